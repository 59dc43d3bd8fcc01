/* lra.h — labelled examples in the released formats of the Long Range Arena
 * and of Speech Commands (key `format`, docs/data.md; spec
 * tasks-synthetic-lra.md §c):
 *
 *   listops          the release's basic_{train,val,test}.tsv (Source, Target),
 *                    tokenised as the LRA does: '(' and ')' dropped, ']' as X
 *   imdb             the aclImdb folder: {train,test}/{neg,pos} of .txt reviews, labels
 *                    neg 0 / pos 1; valid reads test, as the LRA does
 *   aan              the Retrieval TSVs (label, id1, id2, text1, text2; no
 *                    header; the label 0 or 1, also written 0.0 / 1.0)
 *   cifar10          the binary batches (data_batch_1..5.bin, test_batch.bin):
 *                    grayscale 0.2989 R + 0.5870 G + 0.1140 B as TensorFlow's
 *                    rgb_to_grayscale rounds it, 1,024 pixels row-major; train
 *                    the first 45,000, valid the last 5,000, test test_batch
 *   pathfinder       a folder with metadata/ of .npy files (text lines "folder file
 *                    index label") and the PNG images they name, shuffled by
 *                    data_seed and split 80 / 10 / 10
 *   speech_commands  tasks/speech_commands.h
 *
 * Texts (listops, imdb, aan) are encoded by the tokenizer later; images and
 * audio are signals (Examples.reals): pixel intensities 0..255, which the
 * task feeds as token ids (tokenizer byte) or as inputs of encoder linear,
 * and audio samples, inputs only.
 *
 *     lra_read(&ex, &cfg, SPLIT_VALID, true, &err);
 */
#ifndef SEQLAB_LRA_H
#define SEQLAB_LRA_H

#include <stdbool.h>

#include "../core/config.h"
#include "../core/error.h"
#include "examples.h"

/* Whether the config's format reads examples in one of these formats (not tsv). */
bool lra_format(const Config *c);
/* Whether its examples are signals, and the factor that maps a signal's
 * values to [0, 1] pixels or [-1, 1) samples (1/255 for images, 1 for audio). */
bool lra_signals(const Config *c);
float lra_signal_scale(const Config *c);
/* Whether the values are integer intensities that can be token ids (images). */
bool lra_pixels(const Config *c);
/* Reads one split's examples. need_labels: the training split. */
int lra_read(Examples *ex, const Config *c, int split, bool need_labels, Error *err);

/* The LRA's ListOps tokenisation in place: parentheses removed, ']' as X. */
void lra_listops_tokens(Examples *ex);

#endif
