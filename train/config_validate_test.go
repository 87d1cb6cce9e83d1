package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fess-seg/fess/errs"
)

// Every out-of-range field is a usage error (exit 2) naming it and its
// value, never silently replaced.
func TestValidateNamesFieldAndValue(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Epochs = -2 }, "--epochs -2"},
		{func(c *Config) { c.Batch = -1 }, "--batch -1"},
		{func(c *Config) { c.LR = nan }, "--lr NaN"},
		{func(c *Config) { c.LR = inf }, "--lr +Inf"},
		{func(c *Config) { c.LR = -1 }, "--lr -1"},
		{func(c *Config) { c.TrainCases = -1 }, "--train-cases -1"},
		{func(c *Config) { c.Threads = -3 }, "--threads -3"},
		{func(c *Config) { c.ClipNorm = -0.5 }, "--clip-norm -0.5"},
		{func(c *Config) { c.ClipNorm = nan }, "--clip-norm NaN"},
		{func(c *Config) { c.WeightDecay = -0.1 }, "--weight-decay -0.1"},
		{func(c *Config) { c.WeightDecay = nan }, "--weight-decay NaN"},
		{func(c *Config) { c.Lambda = 1.5 }, "--lambda 1.5"},
		{func(c *Config) { c.Lambda = -0.1 }, "--lambda -0.1"},
		{func(c *Config) { c.Lambda = nan }, "--lambda NaN"},
		{func(c *Config) { c.Temperature = -1 }, "--temperature -1"},
		{func(c *Config) { c.Temperature = nan }, "--temperature NaN"},
		{func(c *Config) { c.Model.Dropout = -0.5 }, "--dropout -0.5"},
		{func(c *Config) { c.Model.Dropout = float32(nan) }, "--dropout NaN"},
		{func(c *Config) { c.Model.Dropout = 1 }, "--dropout 1"},
	} {
		c := Config{Data: "x"}
		tc.set(&c)
		err := c.Defaults().Validate()
		if err == nil || errs.ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v (exit %d), want a usage error naming %q", tc.want, err, errs.ExitCode(err), tc.want)
		}
	}
	// The explicit zeros: dropout −1 (0 for every preset) and ClipOff.
	c := Config{Data: "x", ClipNorm: ClipOff}
	c.Model.Dropout = -1
	c.Model.Preset = "seed"
	if err := c.Defaults().Validate(); err != nil {
		t.Errorf("explicit zeros: %v", err)
	}
	if d := c.Defaults(); d.ClipNorm != ClipOff {
		t.Errorf("ClipOff defaulted to %g", d.ClipNorm)
	}
}

func TestDefaultThreads(t *testing.T) {
	n := numCPU()
	t.Setenv("SLURM_CPUS_PER_TASK", "")
	if got := DefaultThreads(); got != n {
		t.Errorf("DefaultThreads = %d, want NumCPU %d", got, n)
	}
	t.Setenv("SLURM_CPUS_PER_TASK", "1")
	if got := DefaultThreads(); got != 1 {
		t.Errorf("SLURM_CPUS_PER_TASK=1: DefaultThreads = %d", got)
	}
	t.Setenv("SLURM_CPUS_PER_TASK", "100000")
	if got := DefaultThreads(); got != n {
		t.Errorf("SLURM_CPUS_PER_TASK larger than the CPUs: %d, want %d", got, n)
	}
	t.Setenv("SLURM_CPUS_PER_TASK", "junk")
	if got := DefaultThreads(); got != n {
		t.Errorf("bad SLURM_CPUS_PER_TASK: %d, want %d", got, n)
	}
	if got := (Config{}).Defaults().Threads; got != n {
		t.Errorf("Defaults().Threads = %d, want %d", got, n)
	}
}

// A config.json field written as 0 where 0 means "default" is refused;
// dropout 0 and clip_norm 0 keep their meaning.
func TestLoadConfigExplicitZeros(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, k := range []string{"epochs", "batch", "lr", "lambda", "temperature"} {
		_, err := LoadConfig(write(`{"data": "x", "` + k + `": 0}`))
		if err == nil || !strings.Contains(err.Error(), k+" 0") {
			t.Errorf("%s 0: got %v", k, err)
		}
	}
	c, err := LoadConfig(write(`{"data": "x", "clip_norm": 0, "model": {"Preset": "seed", "Dropout": 0}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClipNorm != ClipOff || c.Model.Dropout != -1 {
		t.Errorf("explicit zeros read as clip %g, dropout %g", c.ClipNorm, c.Model.Dropout)
	}
	c, err = LoadConfig(write(`{"data": "x", "model": {"Preset": "seed"}}`))
	if err != nil || c.ClipNorm != 0 || c.Model.Dropout != 0 {
		t.Errorf("absent fields: %+v, %v", c, err)
	}
}
