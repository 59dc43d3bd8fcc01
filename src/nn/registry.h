/* registry.h — every module seqlab can build, by name (registry.c holds the
 * list: adding a module is its file plus one line there). */
#ifndef SEQLAB_REGISTRY_H
#define SEQLAB_REGISTRY_H

#include <stdio.h>

#include "module.h"

/* The module `name` of `kind` ("mixer", "ffn", ...), or NULL. */
const ModuleOps *registry_find(const char *name, const char *kind);
/* Space-separated names of the modules of `kind`, for messages. */
const char *registry_names(const char *kind);
/* Prints every registered module's keys, grouped by kind (train --help). */
void registry_print_help(FILE *f);

#endif
