/* Choropleth maps of the report (inline SVG, see report/maps.py): recolour on a change of the
   reference set or of the variable, hover text, click to the territory's page. No library. */
(function () {
  "use strict";
  var COLORS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
  var LABELS = {score: "indice composite", domain_a: "domaine A", domain_b: "domaine B",
                domain_c: "domaine C", domain_d: "domaine D"};
  function num(v, nd) {
    return v.toLocaleString("fr-FR", {minimumFractionDigits: nd, maximumFractionDigits: nd});
  }
  function klass(v, bounds) {
    if (v === null || v === undefined) { return null; }
    if (!bounds || !bounds.length) { return 2; }
    var k = 0;
    bounds.forEach(function (b) { if (v > b) { k += 1; } });
    return k;
  }
  function text(v, variable) {
    var val = v[variable];
    var out = v.n + " : " + LABELS[variable] + " " + (val === null || val === undefined ? "non disponible" : num(val, 1));
    if (v.r !== null && v.r !== undefined) { out += " · rang " + v.r + "/" + v.N; }
    if (v.lo !== null && v.lo !== undefined) { out += " · intervalle " + num(v.lo, 0) + "–" + num(v.hi, 0); }
    return out;
  }
  function legendHtml(items, svgId) {
    return items.map(function (it) {
      if (it.title) { return "<li class=\"t\">" + it.title + "</li>"; }
      var sw = it.hatch ? "<svg width=\"18\" height=\"12\"><rect width=\"18\" height=\"12\" fill=\"url(#hatch-" + svgId + ")\"/></svg>"
                        : "<span class=\"sw\" style=\"background:" + it.color + "\"></span>";
      return "<li>" + sw + " " + it.text + "</li>";
    }).join("");
  }
  function init(block) {
    var data = JSON.parse(block.querySelector("script.map-data").textContent);
    var setSel = block.querySelector("select.map-set");
    var varSel = block.querySelector("select.map-var");
    var tip = block.querySelector(".map-tip");
    function currentSet() { return setSel ? setSel.value : Object.keys(data)[0]; }
    function currentVar() { return varSel ? varSel.value : "score"; }
    function redraw() {
      var rs = currentSet(), variable = currentVar(), d = data[rs];
      block.querySelectorAll("svg.map").forEach(function (svg) {
        svg.style.display = (!setSel || svg.id === "map-" + rs) ? "" : "none";
      });
      block.querySelectorAll(".map-legend").forEach(function (ul) {
        ul.style.display = (!setSel || ul.dataset.set === rs) ? "" : "none";
      });
      if (!d || !d.breaks) { return; }
      var svg = block.querySelector("#map-" + rs);
      svg.querySelectorAll("path[data-id]").forEach(function (p) {
        var v = d.values[p.getAttribute("data-id")] || {};
        var k = klass(v[variable], d.breaks[variable]);
        p.setAttribute("fill", k === null ? "url(#hatch-" + svg.id + ")" : COLORS[k]);
        p.setAttribute("data-class", k === null ? "none" : String(k));
      });
      var ul = block.querySelector(".map-legend[data-set=\"" + rs + "\"]");
      if (ul && d.legends && d.legends[variable]) { ul.innerHTML = legendHtml(d.legends[variable], svg.id); }
    }
    function lookup(path) {
      var rs = setSel ? currentSet() : Object.keys(data)[0];
      return (data[rs] || {}).values ? data[rs].values[path.getAttribute("data-id")] : null;
    }
    block.addEventListener("mousemove", function (e) {
      var p = e.target.closest && e.target.closest("path[data-id]");
      var v = p ? lookup(p) : null;
      if (!v) { tip.hidden = true; return; }
      tip.textContent = text(v, currentVar());
      var box = block.getBoundingClientRect();
      tip.style.left = (e.clientX - box.left + 12) + "px";
      tip.style.top = (e.clientY - box.top + 12) + "px";
      tip.hidden = false;
    });
    block.addEventListener("mouseleave", function () { tip.hidden = true; });
    block.addEventListener("click", function (e) {
      var p = e.target.closest && e.target.closest("path[data-id]");
      var v = p ? lookup(p) : null;
      if (v && v.u) { window.location.href = v.u; }
    });
    if (setSel) { setSel.addEventListener("change", redraw); }
    if (varSel) { varSel.addEventListener("change", redraw); }
    redraw();
  }
  /* quintile bounds as pandas' Series.quantile (linear interpolation): the same as report/maps.py */
  function quintiles(values) {
    var v = values.filter(function (x) { return x !== null && x !== undefined; }).sort(function (a, b) { return a - b; });
    if (v.length < 5) { return []; }
    return [0.2, 0.4, 0.6, 0.8].map(function (q) {
      var pos = q * (v.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
      return v[lo] + (v[hi] - v[lo]) * (pos - lo);
    });
  }
  /* the "Vos choix" panel recolours the overview map of the same set with the simulated scores */
  window.tiMaps = {
    recolor: function (rs, sim) {
      var svg = document.getElementById("map-" + rs);
      if (!svg) { return; }
      var block = svg.closest(".map-block"), varSel = block && block.querySelector("select.map-var");
      if (varSel && varSel.value !== "score") { return; }
      var score = {};
      sim.forEach(function (r) { score[r.territory_id] = r.score; });
      var bounds = quintiles(sim.map(function (r) { return r.score; }));
      svg.querySelectorAll("path[data-id]").forEach(function (p) {
        var id = p.getAttribute("data-id");
        if (!(id in score)) { return; }
        var k = klass(score[id], bounds);
        p.setAttribute("fill", k === null ? "url(#hatch-" + svg.id + ")" : COLORS[k]);
        p.setAttribute("data-class", k === null ? "none" : String(k));
      });
      svg.setAttribute("data-simulated", "1");
    }
  };
  function start() { document.querySelectorAll(".map-block").forEach(init); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
