package gpt_test

import (
	"os"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
)

// TestMain pins the backend's arithmetic (no excess precision, no TensorFloat-32 products) so that
// TestMatchesPyTorch compares float32 training with PyTorch's at float32 tolerances on GPUs as on CPUs: see backend.PinArithmetic.
func TestMain(m *testing.M) {
	backend.PinArithmetic()
	os.Exit(m.Run())
}
