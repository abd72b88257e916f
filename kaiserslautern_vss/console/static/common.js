'use strict';
// Shared by the console pages: POST with the session's CSRF token, go to login when the session ended.
const vss = {
  csrf: () => document.querySelector('meta[name="csrf-token"]').content,
  async post(url, fields) {
    const response = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: {'X-CSRF-Token': vss.csrf()}, body: new URLSearchParams(fields),
    });
    vss.checkSession(response);
    return response;
  },
  checkSession(response) {
    if (response.status === 401) window.location.assign('/login');
  },
  // An event time (ISO 8601 UTC, microseconds) in the site's time, as the pages show times.
  siteTime(iso) {
    const moment = new Date(iso.replace(/\.(\d{3})\d*Z$/, '.$1Z'));
    return moment.toLocaleString('de-DE', {timeZone: 'Europe/Berlin'});
  },
  // As large as the container allows (heightShare of the screen height at most).
  fit(image, container, heightShare) {
    if (!image.naturalWidth) return;
    const scale = Math.min(container.clientWidth / image.naturalWidth,
                           heightShare * window.innerHeight / image.naturalHeight);
    image.style.width = `${Math.floor(image.naturalWidth * scale)}px`;
  },
  // Detections (pixel boxes of the image) on the canvas lying over the image.
  drawBoxes(canvas, image, boxes) {
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.lineWidth = Math.max(2, canvas.width / 400);
    context.font = `${Math.max(12, canvas.width / 60)}px sans-serif`;
    for (const box of boxes) {
      context.strokeStyle = box.label === 'person' ? '#4da3ff' : '#f0b429';
      context.strokeRect(box.x, box.y, box.w, box.h);
      context.fillStyle = context.strokeStyle;
      context.fillText(box.track_id >= 0 ? `${box.label} #${box.track_id}` : box.label, box.x, Math.max(12, box.y - 4));
    }
  },
};
