#!/bin/sh
# custodian needs ffmpeg (transcoding legacy codecs). Install it when we can (root with apt-get),
# otherwise stop with one line that says what to do — never a cryptic failure later.
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "custodian: installing ffmpeg with apt-get (one time)..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) || {
    echo "custodian: apt-get could not install ffmpeg; install it by hand (apt-get install ffmpeg) and retry" >&2; exit 1; }
  exit 0
fi
echo "custodian: ffmpeg is missing; install it (Debian/Ubuntu: sudo apt-get install ffmpeg, macOS: brew install ffmpeg) and retry" >&2
exit 1
