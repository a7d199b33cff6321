package record

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ManifestName is the manifest's file name inside a recording's directory.
const ManifestName = "manifest.json"

// ManifestVersion is the version of the manifest format written.
const ManifestVersion = 1

// Manifest lists a recording's files on one clock: each file's first frame
// lies StartOffsetMS after the recording's StartedAt.
type Manifest struct {
	Version   int         `json:"version"`
	Room      string      `json:"room"`
	StartedAt time.Time   `json:"started_at"`
	EndedAt   *time.Time  `json:"ended_at,omitempty"` // unset while recording
	Files     []FileEntry `json:"files"`
}

// File states in the manifest.
const (
	FileRecording = "recording" // being written
	FileDone      = "done"      // closed normally
	FileFailed    = "failed"    // stopped by a write error; valid up to the error
	FileEmpty     = "empty"     // closed before any keyframe: no file was made
)

// FileEntry is one participant's source in one file.
type FileEntry struct {
	File            string       `json:"file"` // relative to the manifest
	ParticipantID   string       `json:"participant_id"`
	ParticipantName string       `json:"participant_name,omitempty"`
	Source          Source       `json:"source"`
	Video           *VideoStream `json:"video,omitempty"`
	Audio           *AudioStream `json:"audio,omitempty"`
	StartOffsetMS   int64        `json:"start_offset_ms"` // first frame on the recording's clock
	DurationMS      int64        `json:"duration_ms"`
	Bytes           int64        `json:"bytes"`
	State           string       `json:"state"`
	Error           string       `json:"error,omitempty"`
}

// VideoStream describes a file's video track; the size is the largest
// seen (a simulcast layer switch can change it within the file).
type VideoStream struct {
	Codec  string `json:"codec"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// AudioStream describes a file's audio track.
type AudioStream struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

// End is the time, on the recording's clock, at which the file ends.
func (e FileEntry) End() time.Duration {
	return time.Duration(e.StartOffsetMS+e.DurationMS) * time.Millisecond
}

// ReadManifest reads and checks a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, path, err)
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrBadManifest, path, m.Version, ManifestVersion)
	}
	for i, f := range m.Files {
		if f.File == "" || filepath.IsAbs(f.File) || filepath.Base(f.File) != f.File {
			return nil, fmt.Errorf("%w: %s: file %d: name %q is not a plain file name", ErrBadManifest, path, i, f.File)
		}
		if f.StartOffsetMS < 0 || f.DurationMS < 0 {
			return nil, fmt.Errorf("%w: %s: file %d: negative offset or duration", ErrBadManifest, path, i)
		}
	}
	return &m, nil
}

// writeManifest replaces dir's manifest atomically: a reader sees the old
// or the new one, never half of one.
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".manifest-*.tmp")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := firstErr(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, ManifestName)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
