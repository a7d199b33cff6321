// Package replay turns a recording's files into one video with ffmpeg: the
// presenter's shared screen large with their camera as an inset (their
// camera alone when nothing was shared), everyone's audio mixed, every
// file placed at its offset on the recording's clock. ffmpeg is an
// external program found on PATH; the filter graph is built here.
package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/confab-sfu/confab/room/record"
)

// ErrNoFFmpeg means ffmpeg was not found.
var ErrNoFFmpeg = errors.New("ffmpeg not found: install it (Debian/Ubuntu: apt-get install ffmpeg) or name it with -ffmpeg")

// ErrNothingToReplay means the manifest has no file with media in it.
var ErrNothingToReplay = errors.New("replay: the manifest lists no file with media")

// Options shape the replay video.
type Options struct {
	Width, Height int    // output size; default 1280x720
	FPS           int    // default 30
	Presenter     string // participant whose screen and camera are shown; default: the one who shared the screen longest, else the longest camera
	CRF           int    // x264 quality, 0-51, lower is better; default 23
	Preset        string // x264 preset; default "veryfast"
}

func (o *Options) defaults() error {
	if o.Width == 0 && o.Height == 0 {
		o.Width, o.Height = 1280, 720
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.CRF == 0 {
		o.CRF = 23
	}
	if o.Preset == "" {
		o.Preset = "veryfast"
	}
	switch {
	case o.Width < 64 || o.Height < 64 || o.Width > 7680 || o.Height > 4320 || o.Width%2 != 0 || o.Height%2 != 0:
		return fmt.Errorf("replay: size %dx%d: want even numbers from 64x64 to 7680x4320", o.Width, o.Height)
	case o.FPS < 1 || o.FPS > 120:
		return fmt.Errorf("replay: %d fps: want 1 to 120", o.FPS)
	case o.CRF < 0 || o.CRF > 51:
		return fmt.Errorf("replay: crf %d: want 0 to 51", o.CRF)
	}
	return nil
}

// Plan is an ffmpeg run that makes the replay.
type Plan struct {
	Args     []string      // ffmpeg's arguments
	Filter   string        // the filter graph among them
	Duration time.Duration // of the replay: until the last file ends
}

// Build plans the replay of m, whose files are in dir, into out. It only
// reads the manifest; it is a pure function of its arguments.
func Build(m *record.Manifest, dir, out string, o Options) (*Plan, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	files := usable(m.Files)
	if len(files) == 0 {
		return nil, ErrNothingToReplay
	}
	presenter := o.Presenter
	if presenter == "" {
		presenter = choosePresenter(files)
	}
	var screens, cameras, audio []int
	var end time.Duration
	for i, f := range files {
		end = max(end, f.End())
		if f.Audio != nil {
			audio = append(audio, i)
		}
		if f.Video == nil || f.ParticipantID != presenter {
			continue
		}
		if f.Source == record.SourceScreen {
			screens = append(screens, i)
		} else {
			cameras = append(cameras, i)
		}
	}
	if o.Presenter != "" && len(screens)+len(cameras) == 0 {
		return nil, fmt.Errorf("replay: participant %q has no video in the manifest", o.Presenter)
	}
	g := graph{o: o, files: files, end: end}
	filter, audioOut := g.build(screens, cameras, audio)
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}
	for _, f := range files {
		args = append(args, "-i", filepath.Join(dir, f.File))
	}
	args = append(args, "-filter_complex", filter, "-map", "[vout]")
	if audioOut {
		args = append(args, "-map", "[aout]", "-c:a", "aac", "-b:a", "128k")
	}
	args = append(args, "-c:v", "libx264", "-preset", o.Preset, "-crf", fmt.Sprint(o.CRF), "-pix_fmt", "yuv420p",
		"-r", fmt.Sprint(o.FPS), "-movflags", "+faststart", "-t", seconds(end), out)
	return &Plan{Args: args, Filter: filter, Duration: end}, nil
}

// usable are the files with media in them, in the order of their start.
func usable(all []record.FileEntry) []record.FileEntry {
	var files []record.FileEntry
	for _, f := range all {
		if f.DurationMS > 0 && f.State != record.FileEmpty && (f.Video != nil || f.Audio != nil) {
			files = append(files, f)
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].StartOffsetMS < files[j].StartOffsetMS })
	return files
}

// choosePresenter picks who shared their screen longest, else who showed
// their camera longest.
func choosePresenter(files []record.FileEntry) string {
	best, bestScreen, bestCamera := "", int64(-1), int64(-1)
	screen, camera := map[string]int64{}, map[string]int64{}
	for _, f := range files {
		if f.Video == nil {
			continue
		}
		if f.Source == record.SourceScreen {
			screen[f.ParticipantID] += f.DurationMS
		} else {
			camera[f.ParticipantID] += f.DurationMS
		}
	}
	for _, f := range files { // in file order, so ties go to who came first
		id := f.ParticipantID
		s, c := screen[id], camera[id]
		if f.Video != nil && (s > bestScreen || (s == bestScreen && c > bestCamera)) {
			best, bestScreen, bestCamera = id, s, c
		}
	}
	return best
}

// graph writes an ffmpeg filter graph.
type graph struct {
	o     Options
	files []record.FileEntry
	end   time.Duration
	b     strings.Builder
}

func (g *graph) add(format string, args ...any) {
	if g.b.Len() > 0 {
		g.b.WriteString(";\n")
	}
	fmt.Fprintf(&g.b, format, args...)
}

// build returns the filter graph with outputs [vout] and, when there is
// audio, [aout].
func (g *graph) build(screens, cameras, audio []int) (string, bool) {
	w, h := g.o.Width, g.o.Height
	g.add("color=c=black:s=%dx%d:r=%d:d=%s,format=yuv420p[base0]", w, h, g.o.FPS, seconds(g.end))
	layer := 0
	full, inset := screens, cameras
	if len(screens) == 0 {
		full, inset = cameras, nil
	}
	// Each file is shifted to its offset, fitted in its box, and laid
	// over what is below; eof_action=pass shows the layer below again
	// once the file ends.
	for _, i := range full {
		g.add("[%d:v]setpts=PTS+%s/TB,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,format=yuv420p[full%d]",
			i, seconds(g.offset(i)), w, h, w, h, layer)
		g.add("[base%d][full%d]overlay=eof_action=pass:repeatlast=0[base%d]", layer, layer, layer+1)
		layer++
	}
	// The camera inset: a quarter of the width, bottom right, with a margin.
	iw, margin := even(w/4), even(w/64)
	for _, i := range inset {
		g.add("[%d:v]setpts=PTS+%s/TB,scale=%d:-2,format=yuv420p[inset%d]", i, seconds(g.offset(i)), iw, layer)
		g.add("[base%d][inset%d]overlay=W-w-%d:H-h-%d:eof_action=pass:repeatlast=0[base%d]", layer, layer, margin, margin, layer+1)
		layer++
	}
	g.add("[base%d]null[vout]", layer)
	if len(audio) == 0 {
		return g.b.String(), false
	}
	// Each voice is shifted to its offset with silence before it and in
	// its gaps (aresample async), then all are mixed at full level.
	for n, i := range audio {
		g.add("[%d:a]asetpts=PTS+%s/TB,aresample=48000:async=1:first_pts=0,aformat=channel_layouts=stereo[a%d]", i, seconds(g.offset(i)), n)
	}
	if len(audio) == 1 {
		g.add("[a0]anull[aout]")
	} else {
		var in strings.Builder
		for n := range audio {
			fmt.Fprintf(&in, "[a%d]", n)
		}
		g.add("%samix=inputs=%d:duration=longest:dropout_transition=0:normalize=0[aout]", in.String(), len(audio))
	}
	return g.b.String(), true
}

func (g *graph) offset(i int) time.Duration {
	return time.Duration(g.files[i].StartOffsetMS) * time.Millisecond
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func even(n int) int { return max(2, n&^1) }

// FindFFmpeg returns the ffmpeg to run: name if it is a path to a program,
// else name (default "ffmpeg") looked up on PATH.
func FindFFmpeg(name string) (string, error) {
	if name == "" {
		name = "ffmpeg"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNoFFmpeg, err)
	}
	return p, nil
}

// Run runs the plan with ffmpeg; on failure the error carries ffmpeg's
// messages. Cancelling ctx stops ffmpeg.
func Run(ctx context.Context, ffmpeg string, p *Plan) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffmpeg, p.Args...)
	cmd.Stderr = &stderr
	cmd.Stdout = nil
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("replay: %w", ctx.Err())
		}
		return fmt.Errorf("replay: ffmpeg failed: %v\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Files checks that the files a plan reads exist.
func Files(m *record.Manifest, dir string) error {
	for _, f := range usable(m.Files) {
		if _, err := os.Stat(filepath.Join(dir, f.File)); err != nil {
			return fmt.Errorf("replay: the manifest lists %s: %w", f.File, err)
		}
	}
	return nil
}
