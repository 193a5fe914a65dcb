package optimizers

import (
	"fmt"
	"strings"

	"github.com/smi-gomlx/smi/spectral"
)

// PaperBases lists the base optimizers PaperDefaults knows, in the paper's order.
var PaperBases = []string{"adamw", "adam", "sgd-momentum", "lion"}

// DefaultBase is the paper's most tested base optimizer: SMI's spectral settings start as its row of
// PaperDefaults whatever the base (see SMI), and FromContext wraps it when the context's smi_base is not
// set.
const DefaultBase = "adamw"

// smiDefaults is SMI's default spectral configuration: PaperDefaults(DefaultBase), TotalSteps unset.
func smiDefaults() spectral.Config {
	cfg, err := PaperDefaults(DefaultBase)
	if err != nil {
		panic(err) // DefaultBase is one of PaperBases.
	}
	return cfg
}

// PaperDefaults returns the SMI settings the paper recommends for a base optimizer (Huang, Chen and Zheng,
// 2025, section 3.6): its guidance, not settings this project has tuned. base is one of PaperBases, in any
// case; "sgd_momentum" is accepted too. TotalSteps is left 0: set it to the length of the training.
//
//	base          beta   q     alpha schedule
//	adamw         0.99   0.25  cosine 0.1 -> 0.5   (the most tested)
//	adam          0.995  0.25  cosine 0.1 -> 0.5
//	sgd-momentum  0.9    0.3   linear 0.1 -> 0.4
//	lion          0.99   0.4   linear 0.1 -> 0.3   (experimental)
func PaperDefaults(base string) (spectral.Config, error) {
	cfg := spectral.Config{Quantile: 0.25, Beta: 0.99, Schedule: spectral.ScheduleCosine, AlphaStart: 0.1, AlphaEnd: 0.5}
	switch strings.ReplaceAll(strings.ToLower(base), "_", "-") {
	case "adamw":
	case "adam":
		cfg.Beta = 0.995
	case "sgd-momentum":
		cfg.Beta, cfg.Quantile, cfg.Schedule, cfg.AlphaEnd = 0.9, 0.3, spectral.ScheduleLinear, 0.4
	case "lion":
		cfg.Quantile, cfg.Schedule, cfg.AlphaEnd = 0.4, spectral.ScheduleLinear, 0.3
	default:
		return spectral.Config{}, fmt.Errorf("optimizers.PaperDefaults: unknown base optimizer %q, the paper gives "+
			"settings for %s", base, strings.Join(PaperBases, ", "))
	}
	return cfg, nil
}
