/* Glue only: every chart and table is described by JSON embedded in the page (built in
   Python) and drawn by the vendored libraries (Plotly, Tabulator). */
(function () {
  "use strict";
  function readJSON(el) { return JSON.parse(el.textContent); }
  var nf = {};
  function frNumber(decimals) {
    if (!nf[decimals]) { nf[decimals] = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: decimals, maximumFractionDigits: decimals }); }
    return function (cell) {
      var v = cell.getValue();
      return (v === null || v === undefined || v === "") ? "" : nf[decimals].format(v);
    };
  }

  function drawCharts() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("script[type='application/json'][data-plotly]").forEach(function (el) {
      var spec = readJSON(el), div = document.getElementById(el.dataset.plotly);
      Plotly.newPlot(div, spec.data, spec.layout, { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
      div.on("plotly_click", function (ev) {
        var p = ev && ev.points && ev.points[0];
        if (p && typeof p.customdata === "string" && p.customdata.endsWith(".html")) { window.location.href = p.customdata; }
        if (p && Array.isArray(p.customdata) && typeof p.customdata[0] === "string" && p.customdata[0].endsWith(".html")) { window.location.href = p.customdata[0]; }
      });
    });
  }

  /* A link when the row has a page, plain text otherwise; text set with textContent (never HTML). */
  function linkOrText(urlField) {
    return function (cell) {
      var v = cell.getValue(), url = cell.getRow().getData()[urlField];
      var el = document.createElement(url ? "a" : "span");
      el.textContent = (v === null || v === undefined) ? "" : String(v);
      if (url) { el.setAttribute("href", url); }
      return el;
    };
  }

  /* Items of the list filters as text nodes (Tabulator would insert them as HTML). */
  function textItem(label) {
    var el = document.createElement("span");
    el.textContent = (label === null || label === undefined) ? "" : String(label);
    return el;
  }

  var tables = {};
  function columnsFor(spec) {
    return spec.columns.map(function (c) {
      var col = { title: c.title, field: c.field, headerTooltip: c.tooltip || c.title };
      if (c.type === "number") {
        col.formatter = frNumber(c.decimals || 0); col.hozAlign = "right"; col.sorter = "number";
        col.headerSortStartingDir = "desc"; /* numbers: largest first on the first click */
        col.headerFilter = false;
      } else if (c.type === "link") {
        col.formatter = linkOrText(c.url_field);
        col.headerFilter = "input"; col.headerFilterPlaceholder = "filtrer…";
      } else if (c.filter === "list") {
        col.headerFilter = "list";
        col.headerFilterParams = { valuesLookup: true, clearable: true, sort: "asc", itemFormatter: textItem };
      } else {
        col.headerFilter = "input"; col.headerFilterPlaceholder = "filtrer…";
      }
      if (c.definition) {  /* the indicator's definition on the Méthode page */
        col.titleFormatter = function () {
          var s = document.createElement("span"), a = document.createElement("a");
          s.textContent = c.title + " ";
          a.href = c.definition; a.textContent = "ⓘ"; a.title = "définition"; a.className = "def-link";
          a.addEventListener("click", function (e) { e.stopPropagation(); });
          s.appendChild(a);
          return s;
        };
      }
      if (c.frozen) { col.frozen = true; }
      if (c.width) { col.width = c.width; }
      return col;
    });
  }
  function buildTables() {
    if (typeof Tabulator === "undefined") { return; }
    document.querySelectorAll("script[type='application/json'][data-table]").forEach(function (el) {
      var spec = readJSON(el), id = el.dataset.table;
      tables[id] = new Tabulator("#" + id, {
        data: spec.data, columns: columnsFor(spec), layout: "fitDataTable", height: spec.height || "560px",
        initialSort: spec.initialSort || [], placeholder: "Aucune ligne",
        pagination: false, movableColumns: true
      });
      tables[id].on("dataFiltered", function (filters, rows) {
        var counter = document.querySelector("[data-count-for='" + id + "']");
        if (counter) { counter.textContent = rows.length; }
      });
    });
  }
  function showPanel(name) {
    document.querySelectorAll(".tabs button[data-panel]").forEach(function (b) {
      b.setAttribute("aria-selected", b.dataset.panel === name ? "true" : "false");
    });
    document.querySelectorAll(".table-panel").forEach(function (p) {
      p.hidden = p.id !== "panel-" + name;
      if (!p.hidden && tables["table-" + name]) { tables["table-" + name].redraw(true); }
    });
  }
  /* Deep links: tables.html#niveau=ze&tri=score:desc */
  function applyHash() {
    var h = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var level = h.get("niveau");
    if (level && document.getElementById("panel-" + level)) { showPanel(level); }
    var selected = document.querySelector(".tabs button[aria-selected='true']");
    var sort = h.get("tri"), t = tables["table-" + (level || (selected ? selected.dataset.panel : ""))];
    if (sort && t) { var p = sort.split(":"); t.setSort(p[0], p[1] === "asc" ? "asc" : "desc"); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".tabs button[data-panel]").forEach(function (b) {
      b.addEventListener("click", function () { showPanel(b.dataset.panel); });
    });
    drawCharts();
    buildTables();
    var pending = Object.keys(tables).length;
    Object.values(tables).forEach(function (t) {
      t.on("tableBuilt", function () { pending -= 1; if (pending === 0) { applyHash(); } });
    });
    window.addEventListener("hashchange", applyHash);
    document.documentElement.dataset.reportReady = "1";
  });
  window.TIReport = { tables: tables, showPanel: showPanel };
})();
