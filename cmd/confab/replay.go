package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/confab-sfu/confab/room/record"
	"github.com/confab-sfu/confab/room/record/replay"
)

// runReplay is "confab replay MANIFEST -o lecture.mp4": it composes a
// recording's files into one video with ffmpeg (see docs/recording.md).
func runReplay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("confab replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		out       = fs.String("o", "", "the video to write, an .mp4 file (required)")
		size      = fs.String("size", "1280x720", "the video's width x height")
		fps       = fs.Int("fps", 30, "frames per second")
		crf       = fs.Int("crf", 23, "x264 quality, 0-51, lower is better and larger")
		preset    = fs.String("preset", "veryfast", "x264 preset: ultrafast ... veryslow")
		presenter = fs.String("presenter", "", "participant id whose screen and camera to show (default: who shared the screen longest)")
		ffmpeg    = fs.String("ffmpeg", "", "the ffmpeg program (default: ffmpeg on PATH)")
	)
	manifests, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "Usage: confab replay MANIFEST -o lecture.mp4 [-size 1280x720] [-fps 30] [-crf 23] [-presenter ID] [-ffmpeg PATH]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return err
	}
	if len(manifests) != 1 {
		return fmt.Errorf("want one manifest (a recording's %s), got %d", record.ManifestName, len(manifests))
	}
	if *out == "" {
		return errors.New("-o: name the video to write, e.g. -o lecture.mp4")
	}
	w, h, err := parseSize(*size)
	if err != nil {
		return err
	}
	bin, err := replay.FindFFmpeg(*ffmpeg)
	if err != nil {
		return err
	}
	m, err := record.ReadManifest(manifests[0])
	if err != nil {
		return err
	}
	dir := filepath.Dir(manifests[0])
	if err := replay.Files(m, dir); err != nil {
		return err
	}
	plan, err := replay.Build(m, dir, *out, replay.Options{Width: w, Height: h, FPS: *fps, CRF: *crf, Preset: *preset, Presenter: *presenter})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Composing %.0f s of %s into %s with %s ...\n", plan.Duration.Seconds(), m.Room, *out, bin)
	if err := replay.Run(ctx, bin, plan); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote %s\n", *out)
	return nil
}

// parseInterspersed parses flags before and after the positional
// arguments ("MANIFEST -o out.mp4" as well as "-o out.mp4 MANIFEST").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseSize reads "1280x720".
func parseSize(s string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		w, err = strconv.Atoi(ws)
		if err == nil {
			h, err = strconv.Atoi(hs)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("-size %q: want WIDTHxHEIGHT, e.g. 1280x720", s)
	}
	return w, h, nil
}
