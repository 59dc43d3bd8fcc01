/* speech_commands.h — the Speech Commands data set (Warden 2018,
 * arXiv:1804.03209, v0.02) read from its release folder into labelled audio
 * examples (docs/data.md "Speech Commands").
 *
 * The folder holds one sub-folder per word (yes/, no/, ..., and
 * _background_noise_/, never a class) of 16 kHz mono 16-bit WAV clips of
 * about 1 s, and two lists of clips, validation_list.txt and
 * testing_list.txt, one "word/file.wav" per line; the training split is every
 * clip in neither list. scripts/speech_standin.sh makes a spoken-digit folder
 * in the same layout.
 *
 * The classes are a comma list of word folders, class id = place in the list:
 * "" is SC10 (SPEECH_COMMANDS_SC10, the S4 loader's SUBSET_CLASSES order) and
 * "sc35" every word folder but _background_noise_, sorted (strcmp). Each clip
 * is zero-padded at its end, or cut, to `length` samples (16000: 1 s), as the
 * S4/S5 loader (state-spaces/s4 src/dataloaders/datasets/sc.py,
 * _process_all) pads its SC35 clips; samples are s / 32768, not normalised
 * (the task standardises with the training set's statistics if it wants to).
 * Clips are added class by class, each class's files in strcmp order, so a
 * split reads the same on every machine.
 *
 *     Examples tr;
 *     if (speech_commands_read(&tr, "data/speech_commands", SPLIT_TRAIN, "", 16000, &err)) ...
 *     // tr.n clips; clip i: tr.reals[tr.id_start[i] .. tr.id_start[i + 1]), class tr.labels[i]
 */
#ifndef SEQLAB_SPEECH_COMMANDS_H
#define SEQLAB_SPEECH_COMMANDS_H

#include <stddef.h>

#include "../core/error.h"
#include "../data/corpus.h" /* SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST */
#include "examples.h"

#define SPEECH_COMMANDS_SC10 "yes,no,up,down,left,right,on,off,stop,go"
#define SPEECH_COMMANDS_RATE 16000u

/* The class list that `classes` ("", "sc35" or a comma list) stands for in
 * the folder root, comma-separated into out (cap bytes), and its length in
 * *count. Errors: a missing root, an empty or repeated name, a name with '/',
 * a missing class folder, no word folders for "sc35", out too small. */
int speech_commands_classes(const char *root, const char *classes, char *out, size_t cap, int *count, Error *err);

/* Reads split (SPLIT_TRAIN, SPLIT_VALID or SPLIT_TEST) of the folder root
 * into ex (begun here; examples_free it), one signal of `length` samples per
 * clip of the classes. Both list files must be there and name existing clips
 * (lines naming another word's clips are not checked), no clip may be in both,
 * and every clip read must be a mono WAV at 16 kHz. Returns 0, or -1 with ex
 * freed and a message naming the folder, list file and line, or clip. */
int speech_commands_read(Examples *ex, const char *root, int split, const char *classes, size_t length, Error *err);

#endif
