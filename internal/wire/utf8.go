package wire

import "unicode/utf8"

// utf8Validator checks UTF-8 text that arrives in pieces, split anywhere,
// even inside a character. It fails at the first byte that cannot start or
// continue a valid sequence, not at the end of the message.
type utf8Validator struct {
	need   uint8 // continuation bytes still expected
	lo, hi byte  // the range allowed for the next continuation byte
}

// write checks the next piece of text and reports whether it is still
// valid UTF-8 (or a valid prefix of it).
func (v *utf8Validator) write(p []byte) bool {
	i := 0
	for v.need > 0 {
		if i == len(p) {
			return true
		}
		if c := p[i]; c < v.lo || c > v.hi {
			return false
		}
		v.lo, v.hi = 0x80, 0xBF
		v.need--
		i++
	}
	p = p[i:]

	// Find the start of an incomplete character at the end of p, if any.
	end := len(p)
	for k := len(p) - 1; k >= 0 && k >= len(p)-utf8.UTFMax+1; k-- {
		c := p[k]
		if c < utf8.RuneSelf {
			break
		}
		if c >= 0xC0 {
			if n := seqLen(c); n > 0 && len(p)-k < n {
				end = k
			}
			break
		}
	}
	if !utf8.Valid(p[:end]) {
		return false
	}
	tail := p[end:]
	if len(tail) == 0 {
		return true
	}
	v.need, v.lo, v.hi = lead(tail[0])
	if v.need == 0 {
		return false
	}
	for _, c := range tail[1:] {
		if c < v.lo || c > v.hi {
			return false
		}
		v.lo, v.hi = 0x80, 0xBF
		v.need--
	}
	return true
}

// complete reports whether the text so far ends on a character boundary.
func (v *utf8Validator) complete() bool { return v.need == 0 }

func (v *utf8Validator) reset() { *v = utf8Validator{} }

// seqLen is the length of the sequence that starts with lead byte c, or 0
// when c can never start one.
func seqLen(c byte) int {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 0
}

// lead returns how many continuation bytes follow lead byte c and the range
// allowed for the first of them (RFC 3629 table 3-7: no overlongs, no
// surrogates, nothing above U+10FFFF). need is 0 for an invalid lead byte.
func lead(c byte) (need uint8, lo, hi byte) {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 1, 0x80, 0xBF
	case c == 0xE0:
		return 2, 0xA0, 0xBF
	case c == 0xED:
		return 2, 0x80, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		return 2, 0x80, 0xBF
	case c == 0xF0:
		return 3, 0x90, 0xBF
	case c >= 0xF1 && c <= 0xF3:
		return 3, 0x80, 0xBF
	case c == 0xF4:
		return 3, 0x80, 0x8F
	}
	return 0, 0, 0
}
