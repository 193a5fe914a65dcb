package dotgrad

import (
	"os"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
)

// TestMain pins the backend's arithmetic (no excess precision, no TensorFloat-32 products): the
// tests compare the gradients' forms with GoMLX's within 1e-4, a float32 tolerance, and on a GPU
// one form's product could otherwise run in TensorFloat-32 (about 1e-3 relative) and another's in
// float32. See backend.PinArithmetic.
func TestMain(m *testing.M) {
	backend.PinArithmetic()
	os.Exit(m.Run())
}
