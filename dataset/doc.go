// Package dataset finds, prepares and synthesises segmentation data sets
// (docs/data.md): layout detection and scanning for BraTS 2015/2016, BraTS
// 2017–2021, MSD Task01_BrainTumour, AbdomenCT-1K and the reference's .npy
// arrays; preparation of a data set into S³ training cubes with a manifest;
// the inverse mapping of a prepared-grid mask back to native space; and
// synthetic brain-MRI and abdomen-CT phantoms written as real files.
//
// # Preparation
//
// Prepare runs, per case:
//
//  1. Modality: flair by default for MRI (t1, t1ce, t2 selectable); the
//     single CT image; the .npy image. 4-D MSD files give the modality's
//     volume (channel order from dataset.json, else FLAIR, T1w, T1gd, T2w).
//  2. Crop to the foreground box [lo, hi): MRI and npy, voxels ≠ 0 (BraTS
//     and MSD are skull-stripped with a zero background); CT, the body:
//     per axial slice the largest 4-connected region above −500 HU, so the
//     patient table is left out. No foreground: the whole volume.
//  3. Resample the box: trilinear for the image, nearest neighbour for the
//     label, with voxel centres spanning the same extent (CaseGeometry gives
//     the exact index map). The cube mode (Options.Size, default 64) makes
//     every box S³, stretching anisotropic boxes as the reference's resize
//     did; the spacing mode (Options.Spacing, or the data set's median
//     spacing) resamples the box to a voxel spacing, max(1,
//     round(n·native/target)) voxels per axis, so cases differ in dims.
//  4. Normalise: MRI and npy, z-score inside the brain (voxels whose
//     nearest native voxel is ≠ 0), 0 outside; CT, clip to the window
//     (default [−200, 300] HU, soft-tissue/contrast organs) and scale to
//     [0, 1].
//  5. Binarise the label with the target (TargetLabels): wt/any = label > 0;
//     tc = BraTS 1, 3, 4 / MSD 2, 3; et = BraTS 4 / MSD 3 (BraTS 2017–2021
//     use 1 necrotic core, 2 edema, 4 enhancing; 2015 also 3 non-enhancing;
//     MSD relabels 1 edema, 2 non-enhancing, 3 enhancing); AbdomenCT-1K
//     organs liver 1, kidney 2, spleen 3, pancreas 4; or a list of values.
//  6. Split: cases sorted by ID, shuffled by a PCG generator seeded with
//     the seed, cut by the train/val/test fractions (default 0.7/0.1/0.2).
//     With Options.Folds, splits.json also gets that many cross-validation
//     folds of the cases outside the test split (Prepared.Folds reads them).
//
// The output directory holds cases/<id>_image.nii.gz (float32),
// cases/<id>_mask.nii.gz (uint8 0/1), both with the prepared grid's affine
// so they overlay the source in a viewer, and manifest.json (Manifest): the
// options, the source directory and a fingerprint of its files, and per case
// the source files, native dims, spacing, affine, crop box, prepared
// spacing and affine, and normalisation constants. A second Prepare with
// the same options and unchanged sources reuses it.
//
// Prepared.LoadCase reads a case of either mode with its dims; Prepared.Load
// reads cube-mode cases only. For inference, PreprocessVolume applies steps
// 1–4 to a new image and RestoreMask maps the predicted mask (on the
// geometry's PreparedDims grid) back to the image's own grid.
package dataset
