package kernels

import (
	"os"
	"strconv"
)

func init() {
	if v := os.Getenv("FESS_DIRECTA"); v != "" {
		directAPanels, _ = strconv.Atoi(v)
	}
}
