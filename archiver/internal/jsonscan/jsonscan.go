// Package jsonscan finds where JSON values end in text that is already known to be valid JSON,
// without decoding it: the hot path of intake and of read-back, which only need the raw bytes of
// a few top-level fields.
package jsonscan

// Text is JSON text as a string or as bytes.
type Text interface{ ~string | ~[]byte }

// StringEnd is the index just past the JSON string whose opening quote is at s[i], or -1 when
// it is not closed.
func StringEnd[T Text](s T, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// ValueEnd is the index just past the JSON value that starts at s[i], or -1. A number, true,
// false or null ends at the delimiter after it (',', '}', ']' or white space), so the value must
// be followed by one: inside an object or array it always is.
func ValueEnd[T Text](s T, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return StringEnd(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := StringEnd(s, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		for j := i; j < len(s); j++ {
			switch s[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				if j == i {
					return -1
				}
				return j
			}
		}
		return -1
	}
}
