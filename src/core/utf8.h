/* utf8.h — decoding and encoding UTF-8 (RFC 3629), shared by the JSON
 * reader/writer and the character tokenizer.
 *
 * Strict: overlong forms, UTF-16 surrogates, code points above U+10FFFF and
 * cut or stray continuation bytes are invalid.
 *
 *     uint32_t cp;
 *     size_t k = utf8_decode(s + i, n - i, &cp);   // 0: invalid at byte i
 *     char buf[4]; size_t m = utf8_encode(cp, buf);
 */
#ifndef SEQLAB_UTF8_H
#define SEQLAB_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid UTF-8 sequence at s, n >= 1 bytes available, and
 * its code point in *cp (cp may be NULL); 0 when the bytes are not valid UTF-8. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes cp (at most U+10FFFF, not a surrogate) into out[0..3]; returns the
 * number of bytes written. */
size_t utf8_encode(uint32_t cp, char *out);

/* Python's str.isspace for one code point (Unicode White_Space, as the
 * Transformer-XL word splitter and Hugging Face's row filter see it):
 * \t \n \v \f \r \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000. */
bool utf8_is_space(uint32_t cp);

/* Offset of the first byte of the first invalid sequence in s[0, n), or n
 * when all of it is valid. */
size_t utf8_first_invalid(const unsigned char *s, size_t n);

#endif
