package content_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/recserve/recserve/models/content"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only separators", " ,.!? \t\n", nil},
		{"english title", "Quinmaen Tiered Lace Evening Coat", []string{"quinmaen", "tiered", "lace", "evening", "coat"}},
		{"punctuation", "Hello, World! It's 5G-ready (new).", []string{"hello", "world", "it", "s", "5g", "ready", "new"}},
		{"digits", "128GB 256gb 5,000mAh 3.5mm USB-C 2024", []string{"128gb", "256gb", "5", "000mah", "3", "5mm", "usb", "c", "2024"}},
		{"mixed chinese english", "华为Mate60手机壳", []string{"华为", "mate60", "手机", "机壳"}},
		{"chinese full-width punctuation", "碧螺春特级，礼盒优惠。", []string{"碧螺", "螺春", "春特", "特级", "礼盒", "盒优", "优惠"}},
		{"chinese brackets and quotes", "【包邮】“新茶”", []string{"包邮", "新茶"}},
		{"single character run", "A的B", []string{"a", "的", "b"}},
		{"chinese between spaces", "Ordewood 礼盒 碧螺春", []string{"ordewood", "礼盒", "碧螺", "螺春"}},
		{"japanese", "東京タワーへ行きます", []string{"東京", "京タ", "タワ", "ワー", "ーへ", "へ行", "行き", "きま", "ます"}},
		{"japanese with latin", "iPhone用ケース", []string{"iphone", "用ケ", "ケー", "ース"}},
		{"korean", "한국어 처리", []string{"한국", "국어", "처리"}},
		{"full-width ascii", "ＭＡＴＥ６０　Ｐｒｏ！", []string{"mate60", "pro"}},
		{"unicode lower-case", "ÉCOLE Привет ΜΕΓΑ", []string{"école", "привет", "μεγα"}},
		{"combining mark", "cafe\u0301 au lait", []string{"cafe\u0301", "au", "lait"}},
		{"invalid utf-8", "ab\xffcd", []string{"ab", "cd"}},
		{"symbols", "50% off & free shipping ★★★", []string{"50", "off", "free", "shipping"}},
		{"64-byte token kept", strings.Repeat("a", 64), []string{strings.Repeat("a", 64)}},
		{"65-byte token dropped", strings.Repeat("b", 65) + " ok", []string{"ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := content.Tokenize(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Tokenize(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTokenizerStopWords(t *testing.T) {
	tok := content.Tokenizer{StopWords: content.EnglishStopWords()}
	tests := []struct {
		in   string
		want []string
	}{
		{"The case for your phone", []string{"case", "phone"}},
		{"It's the BEST of the best", []string{"best", "best"}},
		{"手机壳 and 的", []string{"手机", "机壳", "的"}},
	}
	for _, tt := range tests {
		if got := tok.Tokenize(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Tokenizer{English}.Tokenize(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	// The copy is the caller's: changing it changes nothing else.
	sw := content.EnglishStopWords()
	delete(sw, "the")
	if _, ok := content.EnglishStopWords()["the"]; !ok {
		t.Error(`EnglishStopWords()["the"] missing after a caller modified its copy`)
	}
	custom := content.Tokenizer{StopWords: map[string]struct{}{"手机": {}}}
	if got, want := custom.Tokenize("手机壳"), []string{"机壳"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tokenizer{手机}.Tokenize(手机壳) = %q; want %q", got, want)
	}
}

func TestAppendTokens(t *testing.T) {
	dst := []string{"x"}
	got := content.Tokenizer{}.AppendTokens(dst, "a b")
	if want := []string{"x", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("AppendTokens([x], %q) = %q; want %q", "a b", got, want)
	}
}

func TestFieldTerm(t *testing.T) {
	tests := []struct {
		prefix, value, want string
	}{
		{content.CategoryPrefix, "Phone-Accessories", "cat:phone-accessories"},
		{content.BrandPrefix, "  Acme   Corp ", "brand:acme corp"},
		{content.BrandPrefix, "   ", ""},
		{content.CategoryPrefix, "茶叶", "cat:茶叶"},
		{content.CategoryPrefix, strings.Repeat("é", 200), "cat:" + strings.Repeat("é", 128)},
	}
	for _, tt := range tests {
		if got := content.FieldTerm(tt.prefix, tt.value); got != tt.want {
			t.Errorf("FieldTerm(%q, %q) = %q; want %q", tt.prefix, tt.value, got, tt.want)
		}
	}
}

func ExampleTokenize() {
	fmt.Println(content.Tokenize("华为Mate60手机壳，5G！"))
	// Output: [华为 mate60 手机 机壳 5g]
}

func BenchmarkTokenize(b *testing.B) {
	inputs := map[string]string{
		"english": "Quinmaen Tiered Lace Evening Coat. Evening cropped blue great premium bundle blouse white lace skirt petite wrap your coat ruffle.",
		"chinese": "Ordewood 礼盒 碧螺春 明前 龙井 普洱，碧螺春特级浓香龙井，礼盒优惠碧螺春礼盒，碧螺春有机明前特级，红茶明前礼盒。",
	}
	for name, s := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s)))
			var dst []string
			for b.Loop() {
				dst = content.Tokenizer{}.AppendTokens(dst[:0], s)
			}
		})
	}
}
