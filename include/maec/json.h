/* Writing JSON by hand with printf needs one thing done right everywhere: strings escaped. */
#ifndef MAEC_JSON_H
#define MAEC_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included ("" for NULL). */
void json_write_string(FILE *out, const char *s);

#endif
