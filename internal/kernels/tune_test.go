package kernels

import (
	"os"
	"strconv"
)

func init() {
	if v := os.Getenv("FESS_KC"); v != "" {
		kcOverride, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("FESS_DIRECTA"); v != "" {
		directAPanels, _ = strconv.Atoi(v)
	}
}
