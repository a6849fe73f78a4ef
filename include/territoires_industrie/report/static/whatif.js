/* "Vos choix": the composite, ranks, deciles and flags of a reference set recomputed in the
   browser from the published domain scores. The reference implementation is
   territoires_industrie/indicators/whatif.py: same formulas, same order of operations (tested
   for parity in headless Chromium). No library, no network. */
(function () {
  "use strict";
  var DOMAINS = ["A", "B", "C", "D"];

  function num(v) { return (v === null || v === undefined || (typeof v === "number" && isNaN(v))) ? null : Number(v); }

  function normWeights(w) {
    var vals = DOMAINS.map(function (d) { return Number(w[d]); });
    var total = 0.0;
    vals.forEach(function (v) { total += v; });
    if (!(total > 0) || vals.some(function (v) { return v < 0; })) { throw new Error("poids invalides"); }
    return vals.map(function (v) { return v / total; });
  }
  function countLe(values, v) { var k = 0; values.forEach(function (x) { if (x !== null && x <= v) { k += 1; } }); return k; }
  function countGt(values, v) { var k = 0; values.forEach(function (x) { if (x !== null && x > v) { k += 1; } }); return k; }

  function compute(rows, s) {
    var w = normWeights(s.weights), n = rows.length;
    var doms = {};
    DOMAINS.forEach(function (d) { doms[d] = rows.map(function (r) { return num(r["domain_" + d.toLowerCase()]); }); });
    var scores = rows.map(function (r, i) {
      var xs = DOMAINS.map(function (d) { return doms[d][i]; });
      if (xs.some(function (x) { return x === null; })) { return null; }
      var acc = 0.0;
      for (var k = 0; k < 4; k += 1) { acc += w[k] * xs[k]; }
      return acc;
    });
    var regN = {};
    rows.forEach(function (r) { regN[r.region] = (regN[r.region] || 0) + 1; });
    var officialGate = s.gate_lq === s.official.gate_lq && s.gate_jobs_ind === s.official.gate_jobs_ind;
    return rows.map(function (r, i) {
      var sc = scores[i];
      var res = {territory_id: r.territory_id, score: sc, rank: null, percentile: null, percentile_regional: null, decile: null};
      if (sc !== null) {
        res.rank = 1 + countGt(scores, sc);
        res.percentile = 100.0 * countLe(scores, sc) / n;
        var same = [];
        for (var j = 0; j < n; j += 1) { if (rows[j].region === r.region) { same.push(scores[j]); } }
        res.percentile_regional = 100.0 * countLe(same, sc) / regN[r.region];
        res.decile = Math.min(10, Math.max(1, Math.ceil(res.percentile / 10.0)));
      }
      var dpct = {};
      DOMAINS.forEach(function (d) { dpct[d] = doms[d][i] === null ? null : 100.0 * countLe(doms[d], doms[d][i]) / n; });
      res.domain_pct = dpct;
      var lq = num(r.ind_lq), jobs = num(r.jobs_ind);
      if (lq !== null && jobs !== null) { res.gate = lq >= s.gate_lq && jobs >= s.gate_jobs_ind; }
      else { res.gate = (officialGate && r.gate_official !== null && r.gate_official !== undefined) ? Boolean(r.gate_official) : null; }
      var p = Number(s.difficulty_percentile), nDom = 0;
      DOMAINS.forEach(function (d) { if (dpct[d] !== null && dpct[d] >= p) { nDom += 1; } });
      var compOk = (res.percentile !== null && res.percentile >= p) || (res.percentile_regional !== null && res.percentile_regional >= p);
      res.in_difficulty = sc === null ? null : (compOk && nDom >= Number(s.difficulty_min_domains));
      res.far = dpct.C === null ? null : dpct.C >= Number(s.far_percentile);
      res.top10 = res.decile === null ? null : res.decile === 10;
      res.top20 = res.decile === null ? null : res.decile >= 9;
      return res;
    });
  }

  /* a candidacy placed in a fixed reference set (the review's panel; whatif.place_group) */
  function placeGroup(group, reference, s) {
    var w = normWeights(s.weights), ref = [];
    reference.forEach(function (r) {
      var xs = DOMAINS.map(function (d) { return num(r["domain_" + d.toLowerCase()]); });
      if (xs.some(function (x) { return x === null; })) { return; }
      var acc = 0.0;
      for (var k = 0; k < 4; k += 1) { acc += w[k] * xs[k]; }
      ref.push([acc, r.region]);
    });
    var xs = DOMAINS.map(function (d) { return num(group["domain_" + d.toLowerCase()]); });
    var out = {score: null, percentile: null, percentile_regional: null, rank: null};
    if (!xs.some(function (x) { return x === null; }) && ref.length) {
      var acc = 0.0;
      for (var k = 0; k < 4; k += 1) { acc += w[k] * xs[k]; }
      var scores = ref.map(function (r) { return r[0]; });
      var same = ref.filter(function (r) { return r[1] === group.region; }).map(function (r) { return r[0]; });
      out.score = acc;
      out.percentile = 100.0 * countLe(scores, acc) / scores.length;
      out.rank = 1 + countGt(scores, acc);
      out.percentile_regional = same.length ? 100.0 * countLe(same, acc) / same.length : null;
    }
    var dpct = {}, p = Number(s.difficulty_percentile), nDom = 0;
    DOMAINS.forEach(function (d) { dpct[d] = num((group.domain_pct || {})[d]); if (dpct[d] !== null && dpct[d] >= p) { nDom += 1; } });
    var ok = (out.percentile !== null && out.percentile >= p) || (out.percentile_regional !== null && out.percentile_regional >= p);
    out.in_difficulty = out.score === null ? null : (ok && nDom >= Number(s.difficulty_min_domains));
    out.far = dpct.C === null ? null : dpct.C >= Number(s.far_percentile);
    var lq = num(group.ind_lq), jobs = num(group.jobs_ind);
    var officialGate = s.gate_lq === s.official.gate_lq && s.gate_jobs_ind === s.official.gate_jobs_ind;
    out.gate = (lq !== null && jobs !== null) ? (lq >= s.gate_lq && jobs >= s.gate_jobs_ind)
      : ((officialGate && group.gate_official !== null && group.gate_official !== undefined) ? Boolean(group.gate_official) : null);
    return out;
  }

  /* the form both panels share: weights (kept summing to 100), thresholds, reset, listeners */
  var FIELDS = ["difficulty_percentile", "difficulty_min_domains", "gate_lq", "gate_jobs_ind", "far_percentile"];
  function Controls(root, official) {
    var q = function (sel) { return root.querySelector(sel); };
    this.q = q;
    this.settings = function () {
      var s = {weights: {}, official: official};
      DOMAINS.forEach(function (d) { s.weights[d] = Number(q("input[name=w" + d + "][type=number]").value); });
      FIELDS.forEach(function (f) { s[f] = Number(q("input[name=" + f + "]").value); });
      return s;
    };
    this.isOfficial = function (s) {
      return DOMAINS.every(function (d) { return s.weights[d] === official.weights[d]; }) &&
        FIELDS.every(function (f) { return s[f] === official[f]; });
    };
    this.setWeight = function (d, v, rebalance) {
      v = Math.max(0, Math.min(100, Math.round(Number(v) || 0)));
      var cur = {};
      DOMAINS.forEach(function (x) { cur[x] = Number(q("input[name=w" + x + "][type=number]").value); });
      cur[d] = v;
      if (rebalance) {  /* the others share what is left, in proportion: the four stay summing to 100 */
        var others = DOMAINS.filter(function (x) { return x !== d; });
        var rest = 100 - v, sum = 0;
        others.forEach(function (x) { sum += cur[x]; });
        /* largest remainder: the shares stay in proportion and sum exactly to what is left */
        var exact = others.map(function (x) { return sum > 0 ? rest * cur[x] / sum : rest / others.length; });
        var floors = exact.map(Math.floor), left = rest;
        floors.forEach(function (f) { left -= f; });
        var order = exact.map(function (e, i) { return [e - floors[i], i]; }).sort(function (a, b) { return b[0] - a[0] || a[1] - b[1]; });
        for (var k = 0; k < left; k += 1) { floors[order[k % order.length][1]] += 1; }
        others.forEach(function (x, i) { cur[x] = floors[i]; });
      }
      DOMAINS.forEach(function (x) {
        q("input[name=w" + x + "][type=number]").value = cur[x];
        q("input[name=w" + x + "][type=range]").value = cur[x];
      });
    };
    this.reset = function () {
      var self = this;
      DOMAINS.forEach(function (d) { self.setWeight(d, official.weights[d], false); });
      FIELDS.forEach(function (f) { q("input[name=" + f + "]").value = official[f]; });
    };
    this.bind = function (onChange, onReset) {
      var self = this;
      DOMAINS.forEach(function (d) {
        q("input[name=w" + d + "][type=range]").addEventListener("input", function (e) { self.setWeight(d, e.target.value, true); onChange(); });
        q("input[name=w" + d + "][type=number]").addEventListener("change", function (e) { self.setWeight(d, e.target.value, true); onChange(); });
      });
      FIELDS.forEach(function (f) { q("input[name=" + f + "]").addEventListener("change", onChange); });
      q("button.whatif-reset").addEventListener("click", onReset);
    };
  }

  function ReviewPanel(root) {
    var data = JSON.parse(root.querySelector("script.whatif-data").textContent);
    var official = data.official, self = this, form = new Controls(root, official), q = form.q;
    var officialResult = {};  /* the official placement does not change: computed once per set */
    data.order.forEach(function (rs) {
      officialResult[rs] = placeGroup(data.sets[rs].group, data.sets[rs].reference, Object.assign({}, official, {official: official}));
    });
    this.update = function () {
      var s = form.settings();
      q(".whatif-banner").hidden = form.isOfficial(s);
      self.last = {};
      q("tbody.whatif-rows").innerHTML = data.order.map(function (rs) {
        var set = data.sets[rs], r = placeGroup(set.group, set.reference, s), o = officialResult[rs];
        self.last[rs] = r;
        return "<tr data-set=\"" + rs + "\"><th>" + esc(set.label) + "</th><td class=\"num score\">" + fr(r.score, 1) + "</td><td class=\"num\">" +
          fr(r.percentile, 0) + "</td><td class=\"num\">" + fr(r.percentile_regional, 0) + "</td><td class=\"num rank\">" + (r.rank === null ? "–" : r.rank) +
          "</td><td class=\"flag-diff\">" + yn(r.in_difficulty) + (r.in_difficulty !== o.in_difficulty ? " (officiel : " + yn(o.in_difficulty) + ")" : "") +
          "</td><td>" + yn(r.far) + "</td><td>" + yn(r.gate) + "</td></tr>";
      }).join("");
    };
    form.bind(self.update, function () { form.reset(); self.update(); });
    this.update();
  }

  /* ---- the panel ---- */
  function fr(v, nd) { return v === null ? "–" : v.toLocaleString("fr-FR", {minimumFractionDigits: nd, maximumFractionDigits: nd}); }
  function yn(v) { return v === null ? "?" : (v ? "oui" : "non"); }
  function esc(t) { var e = document.createElement("span"); e.textContent = String(t); return e.innerHTML; }

  function Panel(root) {
    var data = JSON.parse(root.querySelector("script.whatif-data").textContent);
    var official = data.official, self = this, form = new Controls(root, official), q = form.q;
    this.data = data;
    var setSel = q("select[name=set]");
    function isOfficial(s) { return form.isOfficial(s) && setSel.value === data.default_set; }
    var officialBySet = {};  /* the official ranking of a set does not change: computed once */
    function officialOf(rs) {
      if (!officialBySet[rs]) { officialBySet[rs] = compute(data.sets[rs].rows, Object.assign({}, official, {official: official})); }
      return officialBySet[rs];
    }
    function toHash(s) {
      return "#choix=" + [setSel.value, DOMAINS.map(function (d) { return s.weights[d]; }).join(","),
        FIELDS.map(function (f) { return s[f]; }).join(",")].join(";");
    }
    function fromHash() {
      var m = /[#&]choix=([^&]*)/.exec(window.location.hash);
      if (!m) { return false; }
      var parts = decodeURIComponent(m[1]).split(";");
      if (parts.length !== 3 || !data.sets[parts[0]]) { return false; }
      setSel.value = parts[0];
      var ws = parts[1].split(","), fs = parts[2].split(",");
      DOMAINS.forEach(function (d, i) { form.setWeight(d, ws[i], false); });
      FIELDS.forEach(function (f, i) { if (fs[i] !== undefined && fs[i] !== "") { q("input[name=" + f + "]").value = fs[i]; } });
      return true;
    }
    this.lastMs = null;
    this.update = function (pushHash) {
      var s = form.settings(), set = data.sets[setSel.value];
      var offi = officialOf(setSel.value);
      var t0 = performance.now();
      var sim = compute(set.rows, s);
      self.lastMs = performance.now() - t0;
      self.last = sim;
      var byId = {};
      offi.forEach(function (r) { byId[r.territory_id] = r; });
      var label = {};
      set.rows.forEach(function (r) { label[r.territory_id] = r.label || r.territory_id; });
      var simulated = !isOfficial(s);
      q(".whatif-banner").hidden = !simulated;
      var order = sim.slice().sort(function (a, b) { return (a.rank === null) - (b.rank === null) || a.rank - b.rank || (a.territory_id < b.territory_id ? -1 : 1); });
      var html = order.map(function (r) {
        var o = byId[r.territory_id], delta = (r.rank !== null && o.rank !== null) ? o.rank - r.rank : null;
        return "<tr data-id=\"" + esc(r.territory_id) + "\"><td>" + esc(label[r.territory_id]) + "</td><td class=\"num\">" + fr(r.score, 1) +
          "</td><td class=\"num rank\">" + (r.rank === null ? "–" : r.rank) + "</td><td class=\"num\">" + (delta === null ? "" : (delta > 0 ? "+" : "") + delta) +
          "</td><td class=\"num\">" + (r.decile === null ? "–" : r.decile) + "</td><td class=\"flag-diff\">" + yn(r.in_difficulty) + "</td><td>" + yn(r.far) +
          "</td><td>" + yn(r.gate) + "</td></tr>";
      }).join("");
      q("tbody.whatif-rows").innerHTML = html;
      ["top10", "top20"].forEach(function (k) {
        var enter = sim.filter(function (r) { return r[k] && !byId[r.territory_id][k]; }).map(function (r) { return label[r.territory_id]; });
        var leave = sim.filter(function (r) { return !r[k] && byId[r.territory_id][k]; }).map(function (r) { return label[r.territory_id]; });
        q(".whatif-" + k + "-in").textContent = enter.length ? enter.join(", ") : "aucun";
        q(".whatif-" + k + "-out").textContent = leave.length ? leave.join(", ") : "aucun";
      });
      q(".whatif-ms").textContent = fr(self.lastMs, 1);
      if (pushHash) { history.replaceState(null, "", simulated ? toHash(s) : window.location.pathname + window.location.search); }
      if (window.tiMaps && window.tiMaps.recolor) { window.tiMaps.recolor(setSel.value, sim); }
      if (simulated !== self.wasSimulated) {  /* the map under the panel says which figures it shows */
        document.querySelectorAll(".map-simulated-note").forEach(function (n) { n.hidden = !simulated; });
        self.wasSimulated = simulated;
      }
    };
    this.exportCsv = function () {
      var s = form.settings(), set = data.sets[setSel.value], sim = self.last || compute(set.rows, s);
      var label = {};
      set.rows.forEach(function (r) { label[r.territory_id] = r.label || r.territory_id; });
      var simulated = !isOfficial(s);
      var lines = [];
      lines.push("# " + (simulated ? "Simulation — pas les choix officiels" : "Choix officiels") + " ; release " + data.release +
        (data.synthetic ? " (SYNTHETIC)" : "") + " ; ensemble " + setSel.value + " ; poids A=" + s.weights.A + " B=" + s.weights.B +
        " C=" + s.weights.C + " D=" + s.weights.D + " ; seuils " + FIELDS.map(function (f) { return f + "=" + s[f]; }).join(" "));
      lines.push("territory_id;label;score;rank;percentile;decile;en_difficulte;plus_loin_de_l_emploi;industriel");
      sim.forEach(function (r) {
        lines.push([r.territory_id, "\"" + String(label[r.territory_id]).replace(/"/g, "\"\"") + "\"", r.score === null ? "" : r.score,
          r.rank === null ? "" : r.rank, r.percentile === null ? "" : r.percentile, r.decile === null ? "" : r.decile,
          yn(r.in_difficulty), yn(r.far), yn(r.gate)].join(";"));
      });
      var blob = new Blob(["\ufeff" + lines.join("\n") + "\n"], {type: "text/csv;charset=utf-8"});
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = (simulated ? "SIMULATION_" : "") + "choix_" + setSel.value + "_" + data.release + (data.synthetic ? "_SYNTHETIC" : "") + ".csv";
      document.body.appendChild(a); a.click(); a.remove();
      return {name: a.download, text: lines.join("\n")};
    };
    this.reset = function () {
      setSel.value = data.default_set;
      form.reset();
      self.update(true);
    };
    form.bind(function () { self.update(true); }, function () { self.reset(); });
    setSel.addEventListener("change", function () { self.update(true); });
    q("button.whatif-export").addEventListener("click", function () { self.exportCsv(); });
    fromHash();
    this.update(false);
  }

  window.tiWhatIf = {compute: compute, placeGroup: placeGroup, panels: []};
  function start() {
    document.querySelectorAll(".whatif").forEach(function (root) {
      window.tiWhatIf.panels.push(root.classList.contains("whatif-review") ? new ReviewPanel(root) : new Panel(root));
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
