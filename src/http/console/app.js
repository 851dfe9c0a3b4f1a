// raftka console: live produce / fetch byte rates of this node, from /console/api/rates
// (its counters), drawn on a canvas. Embedded in the binary; no library.
(function () {
  "use strict";
  var canvas = document.getElementById("rates");
  if (!canvas) { return; }
  var ctx = canvas.getContext("2d");
  var points = [];   // {t, inRate, outRate}
  var last = null;
  var KEEP = 90;     // 3 minutes at one sample every 2 s

  function human(bps) {
    var units = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    var i = 0;
    while (bps >= 1024 && i < units.length - 1) { bps /= 1024; i++; }
    return bps.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function draw() {
    var w = canvas.width, h = canvas.height, pad = 30;
    ctx.clearRect(0, 0, w, h);
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p.inRate, p.outRate); });
    ctx.strokeStyle = "#d0d7de";
    ctx.beginPath(); ctx.moveTo(pad, 5); ctx.lineTo(pad, h - pad); ctx.lineTo(w - 5, h - pad); ctx.stroke();
    ctx.fillStyle = "#57606a"; ctx.font = "11px sans-serif";
    ctx.fillText(human(max), pad + 4, 14);
    [["inRate", "#0969da", "produce (bytes in)"], ["outRate", "#1a7f37", "fetch (bytes out)"]].forEach(function (s, k) {
      ctx.strokeStyle = s[1];
      ctx.beginPath();
      points.forEach(function (p, i) {
        var x = pad + (w - pad - 5) * i / Math.max(KEEP - 1, 1);
        var y = (h - pad) - (h - pad - 20) * p[s[0]] / max;
        if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
      });
      ctx.stroke();
      ctx.fillStyle = s[1];
      ctx.fillText(s[2], pad + 10 + 150 * k, h - 10);
    });
  }

  function sample() {
    var req = new XMLHttpRequest();
    req.open("GET", "/console/api/rates");
    req.onload = function () {
      if (req.status !== 200) { return; }
      var now = JSON.parse(req.responseText);
      if (last) {
        var dt = Math.max((now.ts_ms - last.ts_ms) / 1000, 0.001);
        var p = { t: now.ts_ms, inRate: (now.bytes_in - last.bytes_in) / dt, outRate: (now.bytes_out - last.bytes_out) / dt };
        points.push(p);
        if (points.length > KEEP) { points.shift(); }
        var el = document.getElementById("rates-now");
        if (el) {
          el.textContent = "now: produce " + human(p.inRate) + ", fetch " + human(p.outRate) +
            " (" + (now.produce_requests - last.produce_requests) + " produce and " +
            (now.fetch_requests - last.fetch_requests) + " fetch requests)";
        }
        draw();
      }
      last = now;
    };
    req.send();
  }
  sample();
  setInterval(sample, 2000);
}());
