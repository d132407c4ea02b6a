// The knowedge dashboard: renders the report data embedded in the page
// (<script id="knowedge-data" type="application/json">) with ECharts.
// Labels in Chinese and English; ?lang=zh|en or the button switches.
(function () {
  "use strict";

  var LABELS = {
    zh: {
      title: "knowedge 业务看板",
      asOf: "数据截至",
      generated: "生成于",
      dau: "日活学员",
      wau: "周活学员",
      mau: "月活学员",
      gmv_cny: "GMV（元）",
      paying_learners: "付费学员",
      arppu_cny: "ARPPU（元）",
      conversion: "付费转化率",
      daily: "每日事件与收入",
      events: "事件数",
      active_learners: "活跃学员",
      revenue: "GMV（元）",
      funnel: "转化漏斗（按类目）",
      viewed: "浏览",
      started: "开始学习",
      purchased: "购买",
      completed: "完成",
      cohorts: "周留存（按首周分组）",
      week: "第 {n} 周",
      completion: "课程完成率",
      completion_rate: "完成率",
      top_items: "GMV 最高的内容",
      positive_share: "好评占比",
      recommendations: "推荐效果（按模型与实验组）",
      exposures: "曝光",
      ctr: "点击率",
      attributed_gmv_cny: "归因 GMV（元）",
      experiment: "A/B 实验",
      variant: "实验组",
      learners: "学员",
      revenue_per_learner: "人均收入（元）",
      lift: "相对提升",
      p_value: "p 值",
      srm: "样本比例检验",
      sample: "样本量",
      reached: "已达到",
      not_reached: "未达到",
      none: "暂无数据",
      segments: "RFM 人群",
      clv: "客户终身价值分布（元）",
      quality: "数据质量：死信（按规则）",
      volume: "数据质量：每个 API 密钥的事件量",
      dead_letters: "死信",
      skipped: "已跳过的文件",
      problems: "未能生成的面板",
      champions: "高价值",
      loyal: "忠诚",
      promising: "潜力新客",
      needs_attention: "需关注",
      at_risk: "流失风险",
      hibernating: "沉睡",
      lang: "English"
    },
    en: {
      title: "knowedge business dashboard",
      asOf: "Data as of",
      generated: "generated",
      dau: "Daily active learners",
      wau: "Weekly active learners",
      mau: "Monthly active learners",
      gmv_cny: "GMV (CNY)",
      paying_learners: "Paying learners",
      arppu_cny: "ARPPU (CNY)",
      conversion: "Conversion",
      daily: "Daily events and revenue",
      events: "Events",
      active_learners: "Active learners",
      revenue: "GMV (CNY)",
      funnel: "Funnel per category",
      viewed: "Viewed",
      started: "Started",
      purchased: "Purchased",
      completed: "Completed",
      cohorts: "Weekly retention by first week",
      week: "week {n}",
      completion: "Course completion",
      completion_rate: "Completion rate",
      top_items: "Top items by GMV",
      positive_share: "Positive reviews",
      recommendations: "Recommendations per model and variant",
      exposures: "Exposures",
      ctr: "CTR",
      attributed_gmv_cny: "Attributed GMV (CNY)",
      experiment: "A/B experiment",
      variant: "Variant",
      learners: "Learners",
      revenue_per_learner: "Revenue per learner (CNY)",
      lift: "Relative lift",
      p_value: "p-value",
      srm: "Sample ratio check",
      sample: "Sample size",
      reached: "reached",
      not_reached: "not reached",
      none: "No data yet",
      segments: "RFM segments",
      clv: "Customer lifetime value (CNY)",
      quality: "Data quality: dead letters by rule",
      volume: "Data quality: events per API key",
      dead_letters: "Dead letters",
      skipped: "Files skipped",
      problems: "Panels not built",
      champions: "Champions",
      loyal: "Loyal",
      promising: "Promising",
      needs_attention: "Needs attention",
      at_risk: "At risk",
      hibernating: "Hibernating",
      lang: "中文"
    }
  };

  var data = JSON.parse(document.getElementById("knowedge-data").textContent);
  var params = new URLSearchParams(window.location.search);
  var lang = params.get("lang") || ((navigator.language || "").indexOf("zh") === 0 ? "zh" : "en");
  if (!LABELS[lang]) lang = "en";
  var charts = [];

  function t(key) {
    return LABELS[lang][key] || key;
  }

  function rows(name) {
    return (data.panels && data.panels[name]) || [];
  }

  function money(v) {
    return "¥" + Number(v || 0).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function percent(v) {
    return (100 * Number(v || 0)).toFixed(2) + "%";
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function empty(title) {
    return {
      title: { text: title, left: "center", top: "middle", textStyle: { color: "#999", fontSize: 14 } }
    };
  }

  function chart(id, title, option, hasData) {
    var box = document.getElementById(id);
    var c = echarts.init(box, null, { renderer: "canvas" });
    var full = hasData ? option : empty(t("none"));
    full.title = hasData ? { text: title, left: 8, top: 4, textStyle: { fontSize: 14 } } : full.title;
    if (!hasData) full.graphic = [{ type: "text", left: 8, top: 4, style: { text: title, fontSize: 14 } }];
    full.animation = false;
    c.setOption(full);
    charts.push(c);
  }

  function kpis() {
    var k = rows("kpis")[0] || {};
    var box = document.getElementById("kpis");
    box.textContent = "";
    [
      ["dau", String],
      ["wau", String],
      ["mau", String],
      ["gmv_cny", money],
      ["paying_learners", String],
      ["arppu_cny", money],
      ["conversion", percent]
    ].forEach(function (pair) {
      var key = pair[0];
      var v = k[key] === undefined || k[key] === null ? 0 : k[key];
      var card = el("div", { class: "kpi" });
      card.appendChild(el("div", { class: "kpi-label" }, t(key)));
      card.appendChild(el("div", { class: "kpi-value", "data-kpi": key, "data-value": String(v) }, pair[1](v)));
      box.appendChild(card);
    });
  }

  function daily() {
    var r = rows("daily");
    chart(
      "chart-daily",
      t("daily"),
      {
        tooltip: { trigger: "axis" },
        legend: { top: 4, right: 8, data: [t("events"), t("active_learners"), t("revenue")] },
        grid: { top: 40, left: 50, right: 60, bottom: 30 },
        xAxis: { type: "category", data: r.map(function (x) { return x.day; }) },
        yAxis: [{ type: "value" }, { type: "value", position: "right" }],
        series: [
          { name: t("events"), type: "line", data: r.map(function (x) { return x.events; }) },
          { name: t("active_learners"), type: "line", data: r.map(function (x) { return x.active_learners; }) },
          { name: t("revenue"), type: "bar", yAxisIndex: 1, data: r.map(function (x) { return x.gmv_cny; }) }
        ]
      },
      r.length > 0
    );
  }

  function funnel() {
    var r = rows("funnel");
    var stages = ["viewed", "started", "purchased", "completed"];
    chart(
      "chart-funnel",
      t("funnel"),
      {
        tooltip: { trigger: "axis" },
        legend: { top: 4, right: 8, data: stages.map(t) },
        grid: { top: 40, left: 50, right: 20, bottom: 30 },
        xAxis: { type: "category", data: r.map(function (x) { return x.category; }) },
        yAxis: { type: "value" },
        series: stages.map(function (s) {
          return { name: t(s), type: "bar", data: r.map(function (x) { return x[s]; }) };
        })
      },
      r.length > 0
    );
  }

  function cohorts() {
    var r = rows("cohorts");
    var day = 86400000;
    var firsts = [];
    var sizes = {};
    r.forEach(function (x) {
      if (firsts.indexOf(x.cohort_week) < 0) firsts.push(x.cohort_week);
      if (x.cohort_week === x.active_week) sizes[x.cohort_week] = x.learners;
    });
    var cells = [];
    var maxWeek = 0;
    r.forEach(function (x) {
      var n = Math.round((Date.parse(x.active_week) - Date.parse(x.cohort_week)) / (7 * day));
      maxWeek = Math.max(maxWeek, n);
      var size = sizes[x.cohort_week] || x.learners;
      cells.push([n, firsts.indexOf(x.cohort_week), Math.round((1000 * x.learners) / size) / 10]);
    });
    var weeks = [];
    for (var i = 0; i <= maxWeek; i++) weeks.push(t("week").replace("{n}", i));
    chart(
      "chart-cohorts",
      t("cohorts"),
      {
        tooltip: { formatter: function (p) { return firsts[p.value[1]] + " · " + weeks[p.value[0]] + ": " + p.value[2] + "%"; } },
        grid: { top: 40, left: 90, right: 20, bottom: 60 },
        xAxis: { type: "category", data: weeks },
        yAxis: { type: "category", data: firsts },
        visualMap: { min: 0, max: 100, orient: "horizontal", left: "center", bottom: 0, calculable: false },
        series: [{ type: "heatmap", data: cells, label: { show: true, fontSize: 9 } }]
      },
      r.length > 0
    );
  }

  function completion() {
    var r = rows("completion").slice().reverse();
    chart(
      "chart-completion",
      t("completion"),
      {
        tooltip: { trigger: "axis" },
        grid: { top: 40, left: 120, right: 30, bottom: 30 },
        xAxis: { type: "value", max: 1, axisLabel: { formatter: function (v) { return 100 * v + "%"; } } },
        yAxis: { type: "category", data: r.map(function (x) { return x.title || x.item_id; }) },
        series: [{ name: t("completion_rate"), type: "bar", data: r.map(function (x) { return x.completion_rate; }) }]
      },
      r.length > 0
    );
  }

  function topItems() {
    var r = rows("top_items");
    chart(
      "chart-top-items",
      t("top_items"),
      {
        tooltip: { trigger: "axis" },
        legend: { top: 4, right: 8, data: [t("revenue"), t("positive_share")] },
        grid: { top: 40, left: 60, right: 50, bottom: 60 },
        xAxis: { type: "category", data: r.map(function (x) { return x.title || x.item_id; }), axisLabel: { rotate: 30 } },
        yAxis: [{ type: "value" }, { type: "value", max: 1, position: "right" }],
        series: [
          { name: t("revenue"), type: "bar", data: r.map(function (x) { return x.gmv_cny; }) },
          { name: t("positive_share"), type: "line", yAxisIndex: 1, data: r.map(function (x) { return x.positive_share; }) }
        ]
      },
      r.length > 0
    );
  }

  function recommendations() {
    var r = rows("recommendations");
    var names = r.map(function (x) { return x.model_id + " / " + x.variant; });
    chart(
      "chart-recommendations",
      t("recommendations"),
      {
        tooltip: { trigger: "axis" },
        legend: { top: 4, right: 8, data: [t("exposures"), t("ctr"), t("attributed_gmv_cny")] },
        grid: { top: 40, left: 60, right: 60, bottom: 30 },
        xAxis: { type: "category", data: names },
        yAxis: [{ type: "value" }, { type: "value", max: 1, position: "right" }],
        series: [
          { name: t("exposures"), type: "bar", data: r.map(function (x) { return x.exposures; }) },
          { name: t("attributed_gmv_cny"), type: "bar", data: r.map(function (x) { return x.attributed_gmv_cny; }) },
          { name: t("ctr"), type: "line", yAxisIndex: 1, data: r.map(function (x) { return x.ctr; }) }
        ]
      },
      r.length > 0
    );
  }

  function experiments() {
    var list = data.experiments || [];
    var box = document.getElementById("experiment-table");
    box.textContent = "";
    var e = list[0];
    var variants = e ? e.statistics.variants : [];
    chart(
      "chart-experiment",
      t("experiment") + (e ? " · " + e.experiment : ""),
      {
        tooltip: { trigger: "axis" },
        legend: { top: 4, right: 8, data: [t("conversion"), t("ctr"), t("revenue_per_learner")] },
        grid: { top: 40, left: 50, right: 60, bottom: 30 },
        xAxis: { type: "category", data: variants.map(function (v) { return v.name; }) },
        yAxis: [{ type: "value", max: 1 }, { type: "value", position: "right" }],
        series: [
          { name: t("conversion"), type: "bar", data: variants.map(function (v) { return v.conversion; }) },
          { name: t("ctr"), type: "bar", data: variants.map(function (v) { return v.ctr; }) },
          { name: t("revenue_per_learner"), type: "line", yAxisIndex: 1, data: variants.map(function (v) { return v.revenue_per_learner; }) }
        ]
      },
      variants.length > 0
    );
    list.forEach(function (ex) {
      var table = el("table", { class: "experiment" });
      var head = el("tr");
      [t("variant"), t("learners"), t("exposures"), t("ctr"), t("conversion"), t("revenue_per_learner"), t("lift"), t("p_value")].forEach(function (h) {
        head.appendChild(el("th", {}, h));
      });
      table.appendChild(head);
      ex.statistics.variants.forEach(function (v) {
        var cmp = ex.statistics.comparisons.filter(function (c) { return c.name === v.name; })[0];
        var conv = cmp && cmp.conversion;
        var lift = conv && conv.relative_lift ? (100 * conv.relative_lift.value).toFixed(1) + "% [" + (100 * conv.relative_lift.lower).toFixed(1) + "%, " + (100 * conv.relative_lift.upper).toFixed(1) + "%]" : "—";
        var tr = el("tr");
        [v.name, v.learners, v.exposures, v.ctr === null ? "—" : percent(v.ctr), percent(v.conversion), money(v.revenue_per_learner), lift, conv ? conv.p_value.toFixed(4) : "—"].forEach(function (c) {
          tr.appendChild(el("td", {}, String(c)));
        });
        table.appendChild(tr);
      });
      box.appendChild(el("h3", {}, ex.experiment));
      box.appendChild(table);
      var s = ex.statistics;
      box.appendChild(el("p", {}, t("srm") + ": p = " + s.sample_ratio.p_value.toFixed(4) + " · " + t("sample") + ": " + s.sample_size.smallest_variant + " / " + s.sample_size.required_per_variant + " (" + (s.sample_size.reached ? t("reached") : t("not_reached")) + ")"));
    });
  }

  function segments() {
    var s = data.segments || {};
    var sizes = s.sizes || {};
    var names = Object.keys(sizes);
    var total = names.reduce(function (a, n) { return a + sizes[n]; }, 0);
    chart(
      "chart-segments",
      t("segments"),
      {
        tooltip: { trigger: "item" },
        series: [{ type: "pie", radius: ["35%", "65%"], top: 20, data: names.map(function (n) { return { name: t(n), value: sizes[n] }; }) }]
      },
      total > 0
    );
    var q = s.clv_quantiles || [];
    chart(
      "chart-clv",
      t("clv"),
      {
        tooltip: { trigger: "axis" },
        grid: { top: 40, left: 60, right: 20, bottom: 30 },
        xAxis: { type: "category", data: q.map(function (p) { return "P" + Math.round(100 * p[0]); }) },
        yAxis: { type: "value" },
        series: [{ type: "bar", data: q.map(function (p) { return Math.round(100 * p[1]) / 100; }) }]
      },
      q.length > 0
    );
  }

  function stacked(id, title, r, xKey, groupKey, valueKey) {
    var xs = [];
    var groups = [];
    r.forEach(function (x) {
      if (xs.indexOf(x[xKey]) < 0) xs.push(x[xKey]);
      if (groups.indexOf(x[groupKey]) < 0) groups.push(x[groupKey]);
    });
    chart(
      id,
      title,
      {
        tooltip: { trigger: "axis" },
        legend: { top: 4, right: 8, data: groups },
        grid: { top: 40, left: 50, right: 20, bottom: 30 },
        xAxis: { type: "category", data: xs },
        yAxis: { type: "value" },
        series: groups.map(function (g) {
          return {
            name: g,
            type: "bar",
            stack: "all",
            data: xs.map(function (x) {
              return r.filter(function (row) { return row[xKey] === x && row[groupKey] === g; }).reduce(function (a, row) { return a + row[valueKey]; }, 0);
            })
          };
        })
      },
      r.length > 0
    );
  }

  function notes() {
    var box = document.getElementById("notes");
    box.textContent = "";
    var skipped = data.skipped || [];
    if (skipped.length) {
      box.appendChild(el("h3", {}, t("skipped") + " (" + skipped.length + ")"));
      var ul = el("ul");
      skipped.forEach(function (s) { ul.appendChild(el("li", {}, s.file + ": " + s.reason)); });
      box.appendChild(ul);
    }
    var problems = data.problems || [];
    if (problems.length) {
      box.appendChild(el("h3", {}, t("problems")));
      var ul2 = el("ul");
      problems.forEach(function (p) { ul2.appendChild(el("li", {}, p)); });
      box.appendChild(ul2);
    }
  }

  function render() {
    charts.forEach(function (c) { c.dispose(); });
    charts = [];
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.getElementById("title").textContent = t("title");
    document.getElementById("as-of").textContent = t("asOf") + " " + (data.as_of || "—") + " · " + t("generated") + " " + data.generated_at;
    document.getElementById("lang").textContent = t("lang");
    kpis();
    daily();
    funnel();
    cohorts();
    completion();
    topItems();
    recommendations();
    experiments();
    segments();
    stacked("chart-quality", t("quality"), rows("dead_letters"), "day", "rule", "dead_letters");
    stacked("chart-volume", t("volume"), rows("volume"), "day", "key_name", "events");
    notes();
    document.body.setAttribute("data-rendered", "true");
  }

  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "zh" ? "en" : "zh";
    render();
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
  render();
})();
