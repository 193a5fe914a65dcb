package data

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sharedCopy is tiny Shakespeare for the tests: $SMI_DATA when set (make test and make check set
// it to the file the Makefile found), else the per-user cache that make data fills.
var sharedCopy = cmp.Or(os.Getenv("SMI_DATA"), DefaultPath())

func loadShared(t *testing.T) *Corpus {
	t.Helper()
	c, err := Load(sharedCopy)
	if err != nil {
		t.Fatalf("the tests need tiny Shakespeare at %s (set SMI_DATA to the file, or run make data): %v", sharedCopy, err)
	}
	return c
}

func TestVocabularyAndSplit(t *testing.T) {
	c := loadShared(t)
	if len(c.Chars) != 65 {
		t.Fatalf("vocabulary has %d characters, want 65", len(c.Chars))
	}
	if !slices.IsSorted(c.Chars) || c.Chars[0] != '\n' || c.Chars[1] != ' ' {
		t.Fatalf("vocabulary not sorted as nanoGPT's: starts %q", c.Chars[:4])
	}
	// nanoGPT's prepare.py: train has 1,003,854 characters and val 111,540.
	if len(c.Train) != 1003854 || len(c.Val) != 111540 {
		t.Fatalf("split %d/%d, want 1003854/111540", len(c.Train), len(c.Val))
	}
	text, _ := os.ReadFile(sharedCopy)
	if got := c.Decode(c.Val[:200]); got != string(text[1003854:1003854+200]) {
		t.Fatalf("validation does not start where training ends")
	}
	if got := c.Decode(c.Encode([]byte("ROMEO: O, she doth teach!"))); got != "ROMEO: O, she doth teach!" {
		t.Fatalf("encode/decode round trip gave %q", got)
	}
}

func TestBatchDeterminism(t *testing.T) {
	c := loadShared(t)
	x1, y1 := Batch(c.Train, RNG(1337, StreamTrain+5), 4, 16)
	x2, y2 := Batch(c.Train, RNG(1337, StreamTrain+5), 4, 16)
	if !slices.Equal(x1, x2) || !slices.Equal(y1, y2) {
		t.Fatal("same seed and stream gave different batches")
	}
	x3, _ := Batch(c.Train, RNG(1337, StreamTrain+6), 4, 16)
	x4, _ := Batch(c.Train, RNG(1338, StreamTrain+5), 4, 16)
	if slices.Equal(x1, x3) || slices.Equal(x1, x4) {
		t.Fatal("different steps or seeds gave the same batch")
	}
	// Targets are the inputs shifted by one, within each contiguous block.
	for b := range 4 {
		if !slices.Equal(x1[b*16+1:(b+1)*16], y1[b*16:(b+1)*16-1]) {
			t.Fatalf("block %d: targets are not the next characters", b)
		}
	}
}

func TestMissingAndCorruptData(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothere.txt")
	// Any text may have been there: the message asks for its location, and names tiny
	// Shakespeare's download as the default, not as what to copy there.
	if err := Ensure(missing, false); err == nil || !strings.Contains(err.Error(), "not found: pass -data with the location of the text") ||
		!strings.Contains(err.Error(), URL) || strings.Contains(err.Error(), "to that path") {
		t.Fatalf("missing file: got %v, want a message asking for the text's location and naming tiny Shakespeare's download", err)
	}
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Load of a missing file: got %v", err)
	}
	text, err := os.ReadFile(sharedCopy)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.txt")
	text[100] ^= 1
	if err := os.WriteFile(corrupt, text, 0o644); err != nil {
		t.Fatal(err)
	}
	// Any text loads; the checksum only says it is not tiny Shakespeare.
	c, err := Load(corrupt)
	if err != nil {
		t.Fatalf("a text that is not tiny Shakespeare: %v", err)
	}
	if err := c.CheckTinyShakespeare(); err == nil || !strings.Contains(err.Error(), "not tiny Shakespeare: checksum mismatch") {
		t.Fatalf("corrupt file: got %v, want a checksum error", err)
	}
}

func TestDownloadVerifies(t *testing.T) {
	text, err := os.ReadFile(sharedCopy)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(body []byte) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	}
	dir := t.TempDir()
	good := serve(text)
	defer good.Close()
	path := filepath.Join(dir, "sub", FileName)
	if err := fetch(good.URL, path); err != nil {
		t.Fatalf("download: %v", err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	bad := serve(text[:1000])
	defer bad.Close()
	other := filepath.Join(dir, "other.txt")
	if err := fetch(bad.URL, other); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("truncated download: got %v, want a checksum error", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a download that failed verification left a file behind")
	}
}
