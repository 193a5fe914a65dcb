package spectral

import (
	"os"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
)

// TestMain pins the backend's arithmetic (no excess precision, no TensorFloat-32 products) so that
// the exactness this package's tests check holds on GPUs as on CPUs: see backend.PinArithmetic.
func TestMain(m *testing.M) {
	backend.PinArithmetic()
	os.Exit(m.Run())
}
