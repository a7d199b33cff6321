package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/room/record/replay"
)

func TestReplayCommandErrors(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(manifest, []byte(`{"version":1,"room":"r","files":[{"file":"a.webm","participant_id":"p","source":"camera","video":{"codec":"video/VP8"},"duration_ms":1000,"state":"done"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  string // PATH, when set
		want string
		is   error
	}{
		{"no manifest", []string{"-o", "x.mp4"}, "", "want one manifest", nil},
		{"no output", []string{manifest}, "", "-o", nil},
		{"bad size", []string{manifest, "-o", "x.mp4", "-size", "big"}, "", "WIDTHxHEIGHT", nil},
		{"ffmpeg missing from PATH", []string{manifest, "-o", "x.mp4"}, t.TempDir(), "apt-get install ffmpeg", replay.ErrNoFFmpeg},
		{"ffmpeg path wrong", []string{manifest, "-o", "x.mp4", "-ffmpeg", "/nonexistent/ffmpeg"}, "", "ffmpeg not found", replay.ErrNoFFmpeg},
		{"manifest missing", []string{filepath.Join(dir, "nope.json"), "-o", "x.mp4", "-ffmpeg", os.Args[0]}, "", "read manifest", nil},
		{"file missing", []string{"-o", "x.mp4", manifest, "-ffmpeg", os.Args[0]}, "", "a.webm", nil},
		{"help", []string{"-h"}, "", "", flag.ErrHelp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("PATH", c.env)
			}
			var out bytes.Buffer
			err := runReplay(context.Background(), c.args, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
			}
		})
	}
}
