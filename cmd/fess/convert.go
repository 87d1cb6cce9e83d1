package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

const convertUsage = `usage: fess convert --in RUN_OR_FILE.ckpt [--out FILE.safetensors] [--config CONFIG.json] [--force]

Rewrites checkpoints of the older fess state format (last.ckpt, best.ckpt)
as safetensors checkpoints, the format fess train now writes: the model's
weights under the PyTorch module's state_dict names and layouts
(model/torch/fess_unet.py), and the rest of the training state (optimiser,
RNG counters, loop counters) under "fess/" names, so the converted file
evaluates, predicts and resumes exactly as the old one. The result is read
back and compared record by record before the command succeeds.

--in is a checkpoint file, or a run folder. For a run folder without --out,
its last.ckpt and best.ckpt become last.safetensors and best.safetensors
beside them (the old files are kept; a .safetensors already there is left
alone). For a run folder with --out, the checkpoint fess test would use
(best, else last) is written to --out. For a file, --out is required. The
model's architecture comes from config.json in the checkpoint's folder, or
from --config. An existing --out is replaced only with --force. Exit status
2 for bad usage or an unreadable, corrupt or non-finite checkpoint.

example:
  fess convert --in runs/fess
  fess convert --in runs/fess/best.ckpt --out fess-best.safetensors`

func init() {
	register("convert", "rewrite older .ckpt checkpoints as safetensors",
		func(args []string) error { return runConvert(args, os.Stdout) })
}

func runConvert(args []string, stdout io.Writer) error {
	fs := newFlags("convert", convertUsage)
	in := fs.String("in", "", "checkpoint file (.ckpt) or run folder")
	out := fs.String("out", "", "output .safetensors file (default for a run folder: beside the old files)")
	config := fs.String("config", "", "the run's config.json (default: next to the checkpoint)")
	force := fs.Bool("force", false, "replace an existing --out")
	if err := parseFlags(fs, convertUsage, args); err != nil {
		return err
	}
	if *in == "" || fs.NArg() > 0 {
		return errs.Usage("convert: --in is required\n%s", convertUsage)
	}
	st, err := os.Stat(*in)
	if err != nil {
		return errs.Input(*in, "no such checkpoint or run folder")
	}
	if !st.IsDir() {
		if *out == "" {
			return errs.Usage("convert: --out is required when --in is a file\n%s", convertUsage)
		}
		return convertOne(*in, *out, *config, *force, stdout)
	}
	run := *in
	if *out != "" {
		src := train.BestPath(run)
		if _, err := os.Stat(src); err != nil {
			src = train.LastPath(run)
		}
		return convertOne(src, *out, *config, *force, stdout)
	}
	done := 0
	for _, p := range [][2]string{{train.LegacyLast, train.LastCheckpoint}, {train.LegacyBest, train.BestCheckpoint}} {
		src, dst := filepath.Join(run, p[0]), filepath.Join(run, p[1])
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if _, err := os.Stat(dst); err == nil && !*force {
			fmt.Fprintf(stdout, "%s: already present, kept (%s not converted)\n", dst, src)
			continue
		}
		if err := convertOne(src, dst, *config, true, stdout); err != nil {
			return err
		}
		done++
	}
	if done == 0 {
		fmt.Fprintf(stdout, "%s: nothing to convert\n", run)
	}
	return nil
}

func convertOne(src, dst, config string, force bool, stdout io.Writer) error {
	if _, err := os.Stat(src); err != nil {
		return errs.Input(src, "no such checkpoint")
	}
	if _, err := os.Stat(dst); err == nil && !force {
		return errs.Usage("convert: %s exists; remove it or pass --force", dst)
	}
	if config == "" {
		config = filepath.Join(filepath.Dir(src), "config.json")
	}
	if _, err := os.Stat(config); err != nil {
		config = "" // a safetensors input records its config itself
	}
	if err := train.ConvertCheckpoint(src, dst, config); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (from %s)\n", dst, src)
	return nil
}
