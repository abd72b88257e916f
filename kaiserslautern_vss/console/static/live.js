'use strict';
// Live view: camera grid refreshed by polling (only cameras with a new frame are fetched),
// one camera large, alerts pushed by server-sent events, acknowledge and manual trigger.
(() => {
  const root = document.getElementById('live');
  const refreshMs = Number(root.dataset.refreshMs) || 500;
  const tiles = new Map([...document.querySelectorAll('.tile')].map((tile) => [tile.dataset.camera, tile]));
  const large = document.getElementById('large');
  const largeImage = document.getElementById('large-image');
  const largeBoxes = document.getElementById('large-boxes');
  let largeCamera = null;

  // The next frame is fetched completely before it replaces the shown one (no flicker).
  async function load(img, camera, seq) {
    if (img.dataset.loading === '1' || img.dataset.seq === String(seq)) return false;
    img.dataset.loading = '1';
    try {
      const url = `/api/live/${encodeURIComponent(camera)}.jpg?seq=${seq}`;
      const response = await fetch(url, {credentials: 'same-origin'});
      vss.checkSession(response);
      if (!response.ok) return false;
      const previous = img.src;
      img.src = URL.createObjectURL(await response.blob());
      img.dataset.seq = String(seq);
      if (previous.startsWith('blob:')) URL.revokeObjectURL(previous);
      return true;
    } finally {
      img.dataset.loading = '0';
    }
  }

  async function refresh() {
    try {
      const response = await fetch('/api/live/status', {credentials: 'same-origin'});
      vss.checkSession(response);
      if (response.ok) {
        for (const status of (await response.json()).cameras) {
          const tile = tiles.get(status.camera);
          if (!tile) continue;
          tile.classList.toggle('alarm', status.open_incidents.length > 0);
          tile.classList.toggle('stale', status.age_s === null || status.age_s > 5);
          const open = status.open_incidents;
          tile.querySelector('.badge').textContent = open.length ? `Vorfall: ${open.join(', ')}` : '';
          if (status.seq > 0) {
            load(tile.querySelector('img'), status.camera, status.seq);
            if (status.camera === largeCamera) {
              load(largeImage, status.camera, status.seq).then((shown) => { if (shown) drawLarge(status.camera); });
            }
          }
        }
      }
    } finally {
      setTimeout(refresh, refreshMs);
    }
  }

  // The large camera with its newest detections and skeletons drawn over it, its cues below.
  async function drawLarge(camera) {
    const response = await fetch(`/api/live/${encodeURIComponent(camera)}/detections`, {credentials: 'same-origin'});
    if (!response.ok || camera !== largeCamera) return;
    const {boxes, skeletons, cues} = await response.json();
    await largeImage.decode();
    vss.fit(largeImage, large, 0.65);
    vss.drawBoxes(largeBoxes, largeImage, boxes);
    vssBehaviour.draw(largeBoxes, skeletons);
    vssBehaviour.show(document.getElementById('large-cues'), cues);
  }

  function showLarge(camera) {
    largeCamera = camera;
    large.hidden = camera === null;
    if (camera !== null) {
      document.getElementById('large-title').textContent = `Kamera ${camera}`;
      largeImage.dataset.seq = '0';
      document.getElementById('trigger-result').textContent = '';
    }
  }
  for (const [camera, tile] of tiles) {
    tile.addEventListener('click', () => showLarge(camera));
    tile.addEventListener('keydown', (event) => { if (event.key === 'Enter') showLarge(camera); });
  }
  document.getElementById('close-large').addEventListener('click', () => showLarge(null));
  const trigger = document.getElementById('trigger');
  if (trigger) {
    trigger.addEventListener('click', async () => {
      const reason = window.prompt('Grund der manuellen Auslösung:', 'Beobachtung Leitstelle');
      if (reason === null) return;
      const response = await vss.post(`/api/cameras/${encodeURIComponent(largeCamera)}/trigger`, {reason});
      const result = await response.json();
      document.getElementById('trigger-result').textContent = response.ok
        ? `Aufzeichnung ausgelöst: ${result.message}` : `Fehler: ${result.error || result.message}`;
    });
  }

  // --- alerts ---
  const list = document.getElementById('alerts');
  const template = document.getElementById('alert-template');
  const items = new Map();

  function showAcknowledged(item, ack) {
    item.classList.add('done');
    item.querySelector('form.ack').hidden = true;
    item.querySelector('.acked').textContent = `Quittiert von ${ack.who}: ${ack.comment}`;
  }

  function upsert(alert) {
    let item = items.get(alert.key);
    if (!item) {
      item = template.content.firstElementChild.cloneNode(true);
      item.dataset.key = alert.key;
      item.dataset.arrivedMs = String(Date.now());  // when it reached this screen (tests measure it)
      item.id = `alert-${alert.key}`;
      item.querySelector('form.ack').addEventListener('submit', async (event) => {
        event.preventDefault();
        const comment = event.target.comment.value.trim();
        if (!comment) return;
        const response = await vss.post(`/api/alerts/${encodeURIComponent(item.dataset.id)}/acknowledge`, {comment});
        if (response.ok) showAcknowledged(item, (await response.json()).acknowledged);
      });
      items.set(alert.key, item);
      list.prepend(item);
    }
    item.dataset.id = alert.id;
    item.querySelector('.alert-camera').textContent = alert.camera;
    item.querySelector('.alert-rule').textContent = alert.rule;
    item.querySelector('.alert-state').textContent = alert.state === 'open' ? '(offen)' : '(beendet)';
    item.querySelector('.alert-time').textContent = vss.siteTime(alert.started);
    vssBehaviour.show(item.querySelector('.alert-cues'), alert.cues || []);  // why a behaviour rule fired
    const link = item.querySelector('.alert-link');
    link.hidden = !alert.folder;
    if (alert.folder) link.href = `/incidents/${encodeURIComponent(alert.folder)}`;
    if (alert.acknowledged) showAcknowledged(item, alert.acknowledged);
  }

  const state = document.getElementById('stream-state');
  const stream = new EventSource('/api/events');
  stream.addEventListener('open', async () => {
    state.textContent = 'Verbunden';
    const response = await fetch('/api/alerts', {credentials: 'same-origin'});
    vss.checkSession(response);
    if (response.ok) (await response.json()).alerts.reverse().forEach(upsert);
  });
  stream.addEventListener('error', () => { state.textContent = 'Verbindung unterbrochen, verbinde neu …'; });
  stream.addEventListener('incident', (event) => upsert(JSON.parse(event.data)));
  stream.addEventListener('ack', (event) => {
    const ack = JSON.parse(event.data);
    const item = items.get(ack.key);
    if (item) showAcknowledged(item, ack);
  });
  refresh();
})();
