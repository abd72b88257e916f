'use strict';
// Incident player: anonymised frames from the bag, detections and skeletons drawn on a canvas,
// the cues of the frame and those that fired the incident, timeline with the trigger marked,
// play / pause / step.
(() => {
  const player = document.getElementById('player');
  const name = encodeURIComponent(player.dataset.name);
  const image = document.getElementById('frame');
  const canvas = document.getElementById('boxes');
  const position = document.getElementById('position');
  const clock = document.getElementById('clock');
  const play = document.getElementById('play');
  let timeline = null;
  let index = 0;
  let playing = false;
  let timer = null;

  function show(next) {
    index = Math.max(0, Math.min(next, timeline.frames.length - 1));
    position.value = String(index);
    const frame = timeline.frames[index];
    const relative = timeline.trigger_s === null ? '' : ` (Auslösung ${(frame.t - timeline.trigger_s).toFixed(1)} s)`;
    clock.textContent = `Bild ${index + 1} / ${timeline.frames.length} · ${frame.t.toFixed(1)} s${relative}`;
    image.src = `/api/incidents/${name}/frames/${index}.jpg`;
  }
  const fit = () => vss.fit(image, player, 0.75);
  window.addEventListener('resize', fit);
  image.addEventListener('load', () => {
    fit();
    vss.drawBoxes(canvas, image, timeline.frames[index].boxes);
    vssBehaviour.draw(canvas, timeline.frames[index].skeletons);
    vssBehaviour.show(document.getElementById('frame-cues'), timeline.frames[index].cues);
    if (playing) {
      const now = timeline.frames[index];
      const next = timeline.frames[index + 1];
      if (!next) { setPlaying(false); return; }
      timer = setTimeout(() => show(index + 1), Math.max(0, (next.t - now.t) * 1000));
    }
  });

  function setPlaying(on) {
    playing = on;
    play.textContent = on ? 'Pause' : 'Abspielen';
    clearTimeout(timer);
    if (on) show(index >= timeline.frames.length - 1 ? 0 : index + 1);
  }

  async function open() {
    const response = await fetch(`/api/incidents/${name}/timeline`, {credentials: 'same-origin'});
    vss.checkSession(response);
    const body = await response.json();
    if (!response.ok) { clock.textContent = body.error; return; }
    timeline = body;
    if (!timeline.frames.length) { clock.textContent = 'Keine Bilder in dieser Aufzeichnung.'; return; }
    position.max = String(timeline.frames.length - 1);
    const fired = timeline.events.filter((event) => event.cues.length);
    if (fired.length) vssBehaviour.show(document.getElementById('incident-cues'), fired[fired.length - 1].cues);
    if (timeline.trigger_s !== null) {
      const last = timeline.frames[timeline.frames.length - 1].t || 1;
      const mark = document.getElementById('trigger-mark');
      mark.style.left = `${Math.min(100, Math.max(0, 100 * timeline.trigger_s / last))}%`;
      mark.style.display = 'block';
    }
    show(0);
    play.addEventListener('click', () => setPlaying(!playing));
    document.getElementById('step-forward').addEventListener('click', () => { setPlaying(false); show(index + 1); });
    document.getElementById('step-back').addEventListener('click', () => { setPlaying(false); show(index - 1); });
    position.addEventListener('input', () => { setPlaying(false); show(Number(position.value)); });
  }
  open();
})();
