// Package data loads a UTF-8 text file as characters and draws training batches: tiny
// Shakespeare by default (downloaded and verified), or any other text.
//
// As nanoGPT's shakespeare_char/prepare.py does, the vocabulary is the text's distinct characters
// (Unicode code points) sorted, and the text is split into the first 90% of its characters for
// training and the last 10% for validation. Batches are random contiguous blocks; the blocks of a
// batch are a pure function of (seed, stream) (see RNG), so the same seed gives the same batches
// and a resumed run sees exactly the batches an uninterrupted one would. The SHA-256 checksum
// only says whether a file is tiny Shakespeare (Corpus.IsTinyShakespeare); the paper's runs
// require it (CheckTinyShakespeare), other training does not.
package data

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"
)

const (
	// URL is the corpus' public home (karpathy/char-rnn).
	URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
	// SHA256 of the 1,115,394-byte file.
	SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
	// FileName is the corpus' name in the cache and in the project's shared data.
	FileName = "tinyshakespeare.txt"
)

// DefaultPath is the per-user cache location, e.g. ~/.cache/smi-gomlx/tinyshakespeare.txt.
func DefaultPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "smi-gomlx", FileName)
}

// Corpus is the encoded text and its character vocabulary.
type Corpus struct {
	Chars  []rune  // the vocabulary: the text's characters (code points), sorted; token i is Chars[i]
	Train  []int32 // first 90% of the characters
	Val    []int32 // last 10%
	SHA256 string  // hex checksum of the text's bytes
	Bytes  int     // the text's size in bytes
	index  map[rune]int32
}

// Open loads the UTF-8 text at path (see Load). The default path is tiny Shakespeare's cache:
// downloaded and verified when absent, and refused when it holds anything else; any other path
// must exist and may hold any text.
func Open(path string) (*Corpus, error) {
	isDefault := path == DefaultPath()
	if err := Ensure(path, isDefault); err != nil {
		return nil, err
	}
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	if isDefault {
		if err := c.CheckTinyShakespeare(); err != nil {
			return nil, fmt.Errorf("%s, tiny Shakespeare's cache: %v; delete it and run again to download it anew", path, err)
		}
	}
	return c, nil
}

// Ensure returns path if the file exists; otherwise, when download is true, it downloads the
// corpus there and verifies its checksum.
func Ensure(path string, download bool) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read the data file: %w", err)
	}
	if !download {
		// Any text may be there (a run resumes only on the text it began with): the cure is the
		// file's location, not tiny Shakespeare copied under its name.
		return fmt.Errorf("data file %s not found: pass -data with the location of the text (a run resumes only on the text it trained on), "+
			"or leave -data out for tiny Shakespeare (downloaded from %s to %s)", path, URL, DefaultPath())
	}
	if err := fetch(URL, path); err != nil {
		return fmt.Errorf("data file %s not found and downloading it failed: %v\n"+
			"Without internet, copy tiny Shakespeare (from %s) to %s, or pass -data with the file's location", path, err, URL, path)
	}
	return nil
}

func fetch(url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := verify(text); err != nil {
		return err
	}
	// Write then rename, so an interrupted download leaves no partial file behind.
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, text, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func verify(text []byte) error {
	sum := sha256.Sum256(text)
	if got := hex.EncodeToString(sum[:]); got != SHA256 {
		return fmt.Errorf("checksum mismatch: sha256 is %s, want %s (%d bytes, want 1,115,394)", got, SHA256, len(text))
	}
	return nil
}

// ErrNotShakespeare is returned (wrapped) by CheckTinyShakespeare for a text that is not tiny
// Shakespeare.
var ErrNotShakespeare = errors.New("not tiny Shakespeare")

// Load reads the UTF-8 text file at path and encodes it (see FromText). Any text will do; an
// empty file, or one that is not UTF-8, is an error.
func Load(path string) (*Corpus, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("data file %s not found: pass -data with a text file's location (or leave -data out "+
				"for tiny Shakespeare, downloaded from %s)", path, URL)
		}
		return nil, fmt.Errorf("cannot read the data file: %w", err)
	}
	if len(text) == 0 {
		return nil, fmt.Errorf("data file %s is empty: the trainer needs a text to learn from", path)
	}
	if !utf8.Valid(text) {
		at := 0
		for at < len(text) {
			r, size := utf8.DecodeRune(text[at:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			at += size
		}
		return nil, fmt.Errorf("data file %s is not UTF-8 text: byte 0x%02x at offset %d does not start a UTF-8 character "+
			"(a binary file, or a text in another encoding: convert it to UTF-8, e.g. with iconv)", path, text[at], at)
	}
	return FromText(text), nil
}

// FromText builds the vocabulary from the characters present, sorted by code point, encodes the
// text and splits it 90/10 by characters, as nanoGPT's prepare.py. text should be UTF-8: a byte
// that is not counts as the character U+FFFD.
func FromText(text []byte) *Corpus {
	sum := sha256.Sum256(text)
	c := &Corpus{SHA256: hex.EncodeToString(sum[:]), Bytes: len(text), index: map[rune]int32{}}
	for _, r := range string(text) {
		if _, ok := c.index[r]; !ok {
			c.index[r] = 0
			c.Chars = append(c.Chars, r)
		}
	}
	slices.Sort(c.Chars)
	for i, r := range c.Chars {
		c.index[r] = int32(i)
	}
	tokens := c.Encode(text)
	n := len(tokens) * 9 / 10
	c.Train, c.Val = tokens[:n], tokens[n:]
	return c
}

// IsTinyShakespeare reports whether the text is tiny Shakespeare, byte for byte (its checksum).
func (c *Corpus) IsTinyShakespeare() bool { return c.SHA256 == SHA256 }

// CheckTinyShakespeare returns an error wrapping ErrNotShakespeare unless the text is tiny
// Shakespeare: for what must run on the paper's data, such as its experiment.
func (c *Corpus) CheckTinyShakespeare() error {
	if c.IsTinyShakespeare() {
		return nil
	}
	return fmt.Errorf("%w: checksum mismatch: sha256 is %s, want %s (%d bytes, want 1,115,394)", ErrNotShakespeare, c.SHA256, SHA256, c.Bytes)
}

// Encode maps text's characters to token ids; characters outside the vocabulary map to token 0.
func (c *Corpus) Encode(text []byte) []int32 {
	ids := make([]int32, 0, len(text))
	for _, r := range string(text) {
		ids = append(ids, c.index[r])
	}
	return ids
}

// Decode maps token ids back to text.
func (c *Corpus) Decode(ids []int32) string {
	out := make([]rune, len(ids))
	for i, id := range ids {
		out[i] = c.Chars[id]
	}
	return string(out)
}

// Known reports whether every character of text is in the vocabulary.
func (c *Corpus) Known(text []byte) bool {
	for _, r := range string(text) {
		if _, ok := c.index[r]; !ok {
			return false
		}
	}
	return true
}

// Unknown returns the distinct characters of text that are not in the vocabulary, in the order
// they first appear; none when Known(text).
func (c *Corpus) Unknown(text []byte) []rune {
	var out []rune
	for _, r := range string(text) {
		if _, ok := c.index[r]; !ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Streams separate the random batches of training steps from those of evaluations.
const (
	StreamTrain uint64 = 0
	StreamEval  uint64 = 1 << 40
)

// RNG is the batch generator for one stream: training step i uses RNG(seed, StreamTrain+i).
func RNG(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// Batch draws batchSize random blocks of blockSize+1 tokens from split: inputs x and
// next-token targets y, both [batchSize*blockSize] row-major.
func Batch(split []int32, rng *rand.Rand, batchSize, blockSize int) (x, y []int32) {
	x = make([]int32, batchSize*blockSize)
	y = make([]int32, batchSize*blockSize)
	for b := range batchSize {
		i := rng.IntN(len(split) - blockSize)
		copy(x[b*blockSize:], split[i:i+blockSize])
		copy(y[b*blockSize:], split[i+1:i+1+blockSize])
	}
	return x, y
}
