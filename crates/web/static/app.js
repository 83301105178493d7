// ttyward console: the dashboard's live traffic chart (polls the REST API
// with the same session cookie every 2 s and draws bytes/s per port on a
// canvas), and small conveniences on forms: live character counters,
// showing only the chosen operation mode's fields, loading a file into a
// text box. Every page works without this script; the CSP allows only
// this file, no inline script.
"use strict";

// "(12/256)" next to a text box, kept up to date while typing.
document.querySelectorAll("[data-counter]").forEach(function (box) {
  const counter = document.getElementById(box.dataset.counter);
  if (!counter) return;
  box.addEventListener("input", function () {
    counter.textContent = "(" + [...box.value].length + "/" + counter.dataset.max + ")";
  });
});

// Operation Modes: show the fields of the chosen mode only.
document.querySelectorAll("form.mode-form").forEach(function (form) {
  const select = form.querySelector("[data-mode-select]");
  if (!select) return;
  function show() {
    form.querySelectorAll("[data-modes]").forEach(function (field) {
      field.hidden = !field.dataset.modes.split(" ").includes(select.value);
    });
  }
  select.addEventListener("change", show);
  show();
});

// Maintenance > Configuration: read a chosen file into the text box (the
// file itself is never uploaded; the text box is).
document.querySelectorAll("input[type=file][data-fill]").forEach(function (input) {
  const target = document.getElementById(input.dataset.fill);
  if (!target) return;
  input.addEventListener("change", function () {
    const file = input.files && input.files[0];
    if (file) file.text().then(function (text) { target.value = text; });
  });
});

(function () {
  const canvas = document.getElementById("traffic");
  if (!canvas) return;
  const ctx = canvas.getContext("2d");
  const POINTS = 60;
  const colors = ["#0b6e99", "#b3261e", "#1e7b34", "#8a4fbf", "#c77700", "#00838f", "#6d4c41", "#546e7a"];
  const series = new Map(); // port -> {last, values}
  let lastTime = null;

  function draw() {
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    let max = 1;
    for (const s of series.values()) for (const v of s.values) max = Math.max(max, v);
    ctx.fillStyle = "#5b6770";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(Math.round(max) + " B/s", 4, 12);
    let i = 0;
    for (const [port, s] of series) {
      ctx.strokeStyle = colors[i % colors.length];
      ctx.beginPath();
      s.values.forEach(function (v, k) {
        const x = (k / (POINTS - 1)) * w;
        const y = h - (v / max) * (h - 16);
        if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText("port " + port, w - 60, 14 + 13 * i);
      i++;
    }
  }

  function update(ports) {
    const now = performance.now();
    const dt = lastTime === null ? null : (now - lastTime) / 1000;
    lastTime = now;
    for (const p of ports) {
      const total = p.counters.device_rx_bytes + p.counters.device_tx_bytes;
      let s = series.get(p.number);
      if (!s) { s = { last: total, values: new Array(POINTS).fill(0) }; series.set(p.number, s); }
      const rate = dt ? Math.max(0, (total - s.last) / dt) : 0;
      s.last = total;
      s.values.push(rate);
      if (s.values.length > POINTS) s.values.shift();
      const row = document.querySelector('tr[data-port="' + p.number + '"]');
      if (row) {
        row.children[3].textContent = p.state;
        row.children[3].className = "state-" + p.state;
        row.children[4].textContent = p.connections;
        row.children[5].textContent = p.counters.device_rx_bytes;
        row.children[6].textContent = p.counters.device_tx_bytes;
      }
    }
    draw();
  }

  function poll() {
    fetch(canvas.dataset.source, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(update)
      .catch(function () { /* logged out or offline: try again later */ })
      .finally(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
