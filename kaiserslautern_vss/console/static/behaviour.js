'use strict';
// Why a behaviour alert fired, shared by the live view and the incident player: skeletons
// (keypoints and limbs in image pixels) drawn over the boxes, and the cues with their evidence.
const vssBehaviour = {
  labels: {
    assault: 'Körperliche Auseinandersetzung', person_down: 'Person am Boden', fleeing: 'Flucht',
    vehicle_tampering: 'Manipulation an Fahrzeug',
  },
  // On the canvas vss.drawBoxes just sized and drew (not cleared here).
  draw(canvas, skeletons) {
    const context = canvas.getContext('2d');
    const width = Math.max(2, canvas.width / 500);
    context.lineWidth = width;
    context.strokeStyle = '#1ae5ff';
    context.fillStyle = '#ffd91a';
    for (const skeleton of skeletons) {
      context.beginPath();
      for (const [x1, y1, x2, y2] of skeleton.limbs) {
        context.moveTo(x1, y1);
        context.lineTo(x2, y2);
      }
      context.stroke();
      for (const [x, y] of skeleton.points) {
        context.beginPath();
        context.arc(x, y, width * 1.5, 0, 2 * Math.PI);
        context.fill();
      }
    }
  },
  // "Person am Boden (person_down) 0.87 · Personen #3 · aspect_ratio 2.1, …"
  describe(cue) {
    const tracks = cue.track_ids.length ? ` · Personen ${cue.track_ids.map((id) => `#${id}`).join(', ')}` : '';
    const evidence = Object.entries(cue.evidence).map(([name, value]) => `${name} ${value}`).join(', ');
    return `${vssBehaviour.labels[cue.kind] || cue.kind} (${cue.kind}) ${cue.score.toFixed(2)}${tracks}`
      + (evidence ? ` · ${evidence}` : '');
  },
  // The cues as list items of ``list`` (text only: nothing from the bus becomes markup).
  show(list, cues) {
    list.replaceChildren(...cues.map((cue) => {
      const item = document.createElement('li');
      item.className = 'cue';
      item.dataset.kind = cue.kind;
      item.textContent = vssBehaviour.describe(cue);
      return item;
    }));
  },
};
