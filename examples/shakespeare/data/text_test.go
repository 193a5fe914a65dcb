package data

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAnyUTF8Text: a text in several scripts gets nanoGPT's character vocabulary (its distinct
// code points, sorted) and 90/10 split by characters, and round-trips.
func TestAnyUTF8Text(t *testing.T) {
	text := strings.Repeat("Grüße, 世界! — naïve café\n", 40) // 1,000 characters, more bytes
	path := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []rune(text)
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(c.Chars, want) {
		t.Fatalf("vocabulary %q, want %q", string(c.Chars), string(want))
	}
	if n := len([]rune(text)); len(c.Train) != n*9/10 || len(c.Train)+len(c.Val) != n {
		t.Fatalf("split %d/%d of %d characters, want %d for training", len(c.Train), len(c.Val), n, n*9/10)
	}
	if got := c.Decode(append(slices.Clone(c.Train), c.Val...)); got != text {
		t.Fatalf("encode/decode round trip differs")
	}
	if !c.Known([]byte("café 世界")) || c.Known([]byte("Welt")) {
		t.Fatalf("Known: wrong answer for characters in and out of the vocabulary")
	}
	if got := c.Unknown([]byte("Welt, Welt€")); !slices.Equal(got, []rune("Wlt€")) || c.Unknown([]byte("café 世界")) != nil {
		t.Fatalf("Unknown: %q, want the characters out of the vocabulary once each, in order", string(got))
	}
	if c.IsTinyShakespeare() || !errors.Is(c.CheckTinyShakespeare(), ErrNotShakespeare) {
		t.Fatalf("a text other than tiny Shakespeare passes for it")
	}
	if c.Bytes != len(text) || len(c.SHA256) != 64 {
		t.Fatalf("Bytes %d, SHA256 %q", c.Bytes, c.SHA256)
	}
}

// TestTinyShakespeareRecognised: the checksum recognises the corpus, whose vocabulary is the
// 65 characters nanoGPT finds.
func TestTinyShakespeareRecognised(t *testing.T) {
	c := loadShared(t)
	if !c.IsTinyShakespeare() || c.CheckTinyShakespeare() != nil {
		t.Fatalf("tiny Shakespeare not recognised (sha256 %s)", c.SHA256)
	}
}

// TestRefusedFiles: an empty file and one that is not UTF-8 are refused with a message that
// says why (and where, for a byte that is not UTF-8).
func TestRefusedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content []byte
		want    string
	}{
		{nil, "is empty"},
		{[]byte("caf\xe9 au lait"), "byte 0xe9 at offset 3 does not start a UTF-8 character"}, // Latin-1
		{[]byte{0x7f, 'E', 'L', 'F', 0xff, 0}, "byte 0xff at offset 4"},
	} {
		path := filepath.Join(dir, "f.txt")
		if err := os.WriteFile(path, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.content, err, tc.want)
		}
	}
}
