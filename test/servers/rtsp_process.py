"""Start/stop test/servers/rtsp_server.py (GStreamer, system Python) from tests and benchmarks."""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from pathlib import Path

SERVER = Path(__file__).resolve().parent / 'rtsp_server.py'
SYSTEM_PYTHON = '/usr/bin/python3'
APT_COMMAND = ('sudo apt-get install -y gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-ugly '
               'gstreamer1.0-libav gstreamer1.0-plugins-good')
CHECK = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
         "missing = [e for e in ('x264enc', 'rtph264pay', 'decodebin', 'videoconvert') "
         "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))")


def gstreamer_missing() -> str:
    """Why the RTSP test server cannot run here (with the install command), or '' when it can."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f'{SYSTEM_PYTHON} not found; the RTSP test server needs it: {APT_COMMAND}'
    check = subprocess.run([SYSTEM_PYTHON, '-c', CHECK], capture_output=True, text=True, timeout=30)
    if check.returncode != 0 or check.stdout.strip():
        return (f'GStreamer RTSP server or plugins missing ({check.stdout.strip() or check.stderr.strip()[-200:]}); '
                f'install them with: {APT_COMMAND}')
    return ''


class RtspServer:
    """The rtsp_server.py subprocess serving ``video``; start() again reuses the port."""

    def __init__(self, video: Path, port: int = 0, digest: str = '') -> None:
        self.video = Path(video).resolve()
        self.port = port
        self.digest = digest  # 'user:password': only that user, with Digest authentication
        self.url = ''
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), '--video', str(self.video),
                                         '--port', str(self.port), '--digest', self.digest],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True).start()
        try:
            line = lines.get(timeout=timeout_s)
        except queue.Empty:
            self.stop()
            raise RuntimeError('RTSP test server did not become ready') from None
        if not line.startswith('READY '):
            self.stop()
            raise RuntimeError(f'RTSP test server: unexpected first line {line!r}')
        self.url = line.split()[1]
        self.port = int(self.url.split(':')[2].split('/')[0])

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
