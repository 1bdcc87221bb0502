package content

import (
	"unicode"
	"unicode/utf8"
)

// MaxTokenBytes is the longest token a Tokenizer emits, in bytes. Longer
// letter/digit runs are hashes, URLs without separators or base64 blobs, not
// words, and are dropped.
const MaxTokenBytes = 64

// Tokenizer splits text into terms. It is the one tokeniser of recserve: the
// content model and the feature pipeline both use it, so a term means the
// same thing everywhere.
//
// The rules, applied rune by rune:
//
//   - Full-width ASCII forms (U+FF01..U+FF5E, as in "Ｍａｔｅ６０") are folded to
//     ASCII, then every rune is lower-cased (unicode.ToLower).
//   - A run of letters and decimal digits outside the CJK scripts is one token
//     ("Mate60" → "mate60", "café" → "café"); combining marks continue the run
//     they follow. Every other rune (spaces, ASCII and full-width punctuation
//     such as "，" and "。", symbols, invalid UTF-8) separates tokens.
//   - A run of CJK characters (Han, Hiragana, Katakana, Hangul, and the
//     prolonged sound mark "ー") has no spaces to split on, so it emits its
//     overlapping character bigrams: "手机壳" → "手机", "机壳". A run of one
//     character emits that character; the scripts mix freely within a run
//     ("用ケース" → "用ケ", "ケー", "ース"). Switching between a CJK run and a
//     non-CJK run is a token boundary: "华为Mate60手机壳" → "华为", "mate60",
//     "手机", "机壳".
//   - Tokens longer than MaxTokenBytes and tokens in StopWords are dropped.
//
// There is no stemming: "phone" and "phones" are different terms. Catalogue
// text is short and repetitive, and idf already discounts common words, so a
// stemmer's errors would cost more than its merges gain.
//
// The zero value keeps every token. A Tokenizer is safe for concurrent use as
// long as StopWords is not modified.
type Tokenizer struct {
	// StopWords are dropped after lower-casing (see EnglishStopWords); nil
	// keeps every token.
	StopWords map[string]struct{}
}

// Tokenize splits s with the zero Tokenizer (no stop words).
func Tokenize(s string) []string { return Tokenizer{}.Tokenize(s) }

// Tokenize returns the terms of s in text order, repeats included.
func (t Tokenizer) Tokenize(s string) []string { return t.AppendTokens(nil, s) }

// AppendTokens appends the terms of s to dst and returns the extended slice.
func (t Tokenizer) AppendTokens(dst []string, s string) []string {
	var (
		word    []byte // the current non-CJK run, lower-cased UTF-8
		cjk     []rune // the current CJK run
		pair    [2 * utf8.UTFMax]byte
		inWord  bool
		tooLong bool
	)
	emit := func(tok string) {
		if _, stop := t.StopWords[tok]; !stop {
			dst = append(dst, tok)
		}
	}
	flushWord := func() {
		if inWord && !tooLong && len(word) > 0 {
			emit(string(word))
		}
		word, inWord, tooLong = word[:0], false, false
	}
	flushCJK := func() {
		switch len(cjk) {
		case 0:
		case 1:
			emit(string(cjk[0]))
		default:
			for i := 0; i+1 < len(cjk); i++ {
				b := utf8.AppendRune(pair[:0], cjk[i])
				b = utf8.AppendRune(b, cjk[i+1])
				emit(string(b))
			}
		}
		cjk = cjk[:0]
	}
	for _, r := range s {
		r = fold(r)
		switch {
		case isCJK(r):
			flushWord()
			cjk = append(cjk, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r) || (inWord && unicode.IsMark(r)):
			flushCJK()
			inWord = true
			if !tooLong {
				word = utf8.AppendRune(word, r)
				tooLong = len(word) > MaxTokenBytes
			}
		default:
			// A mark after a CJK character or at the start is dropped:
			// bigrams are over characters and a lone mark is no term.
			if unicode.IsMark(r) && len(cjk) > 0 {
				continue
			}
			flushWord()
			flushCJK()
		}
	}
	flushWord()
	flushCJK()
	return dst
}

// fold maps full-width ASCII to ASCII and lower-cases.
func fold(r rune) rune {
	if r >= 0xFF01 && r <= 0xFF5E {
		r -= 0xFF01 - 0x21
	}
	return unicode.ToLower(r)
}

// isCJK reports whether r belongs to a script written without spaces between
// words, whose runs are cut into bigrams.
func isCJK(r rune) bool {
	if r < 0x1100 { // below Hangul Jamo: Latin, Greek, Cyrillic, ...
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r) ||
		r == 'ー' || r == 'ｰ'
}

// englishStopWords is the shared, read-only English stop list.
var englishStopWords = func() map[string]struct{} {
	words := []string{
		"a", "about", "above", "after", "again", "against", "all", "am", "an",
		"and", "any", "are", "as", "at", "be", "because", "been", "before",
		"being", "below", "between", "both", "but", "by", "can", "could", "d",
		"did", "do", "does", "doing", "down", "during", "each", "few", "for",
		"from", "further", "had", "has", "have", "having", "he", "her", "here",
		"hers", "herself", "him", "himself", "his", "how", "i", "if", "in",
		"into", "is", "it", "its", "itself", "just", "ll", "m", "me", "more",
		"most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
		"once", "only", "or", "other", "our", "ours", "ourselves", "out",
		"over", "own", "re", "s", "same", "she", "should", "so", "some",
		"such", "t", "than", "that", "the", "their", "theirs", "them",
		"themselves", "then", "there", "these", "they", "this", "those",
		"through", "to", "too", "under", "until", "up", "ve", "very", "was",
		"we", "were", "what", "when", "where", "which", "while", "who", "whom",
		"why", "will", "with", "would", "you", "your", "yours", "yourself",
		"yourselves",
	}
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[w] = struct{}{}
	}
	return m
}()

// EnglishStopWords returns a new copy of the English stop list: function
// words ("the", "and", "with", ...) and the fragments apostrophes leave ("s",
// "t", "ll"). It holds no product vocabulary, so it is safe for catalogues.
func EnglishStopWords() map[string]struct{} {
	m := make(map[string]struct{}, len(englishStopWords))
	for w := range englishStopWords {
		m[w] = struct{}{}
	}
	return m
}
