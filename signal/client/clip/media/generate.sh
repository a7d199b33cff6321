#!/usr/bin/env bash
# Makes the media clips synthetic peers publish: a 4-second loop of a moving
# test pattern with noise (so it does not compress to nothing), as VP8 in
# three simulcast layers, and a speech-like Opus tone. Run once with ffmpeg
# from Debian (apt-get install ffmpeg); the outputs are committed.
set -euo pipefail
cd "$(dirname "$0")"
src='testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t'
enc() { # width height bitrate output
  ffmpeg -loglevel error -y -f lavfi -i "$src" -t 4 -vf "scale=$1:$2" \
    -c:v libvpx -b:v "$3" -minrate "$3" -maxrate "$3" -bufsize "$3" \
    -g 60 -keyint_min 60 -auto-alt-ref 0 -lag-in-frames 0 -deadline realtime -cpu-used 8 \
    -error-resilient 1 "$4"
}
enc 1280 720 1500k video-high.ivf
enc 640 360 500k video-medium.ivf
enc 320 180 150k video-low.ivf
# A 220 Hz tone whose loudness swings like speech, 48 kHz stereo, 20 ms frames,
# one Opus packet per Ogg page so a reader gets one packet per page.
ffmpeg -loglevel error -y -f lavfi -i 'sine=frequency=220:sample_rate=48000,volume=0.5*(1+sin(2*PI*t*0.7)):eval=frame' -t 4 \
  -ac 2 -c:a libopus -b:a 32k -frame_duration 20 -application voip -page_duration 20000 audio.ogg
ls -l video-*.ivf audio.ogg
