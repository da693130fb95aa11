(root) => {
  const problems = [];
  const outside = (r, f) => r.left < f.left - 0.5 || r.right > f.right + 0.5 || r.top < f.top - 0.5 || r.bottom > f.bottom + 0.5;
  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const plots = [...root.querySelectorAll('.js-plotly-plot')];
  for (const plot of plots) {
    const figure = plot.querySelector('svg.main-svg').getBoundingClientRect();
    const title = plot.querySelector('.gtitle');
    const name = title ? title.textContent : '(untitled)';
    if (!title || !title.textContent.trim()) problems.push(`a plot has no title`);
    const texts = [...plot.querySelectorAll('.xtick text, .ytick text, .gtitle, .g-xtitle text, .g-ytitle text, .legendtext')];
    for (const text of texts) {
      const box = text.getBoundingClientRect();
      if (box.width > 0 && outside(box, figure)) problems.push(`${name}: "${text.textContent}" outside the figure`);
    }
    for (const axis of ['x', 'y']) {
      const axisTitle = plot.querySelector(`.g-${axis}title text`);
      if (!axisTitle) continue;
      const box = axisTitle.getBoundingClientRect();
      for (const tick of plot.querySelectorAll(`.${axis}tick text`)) {
        if (overlap(box, tick.getBoundingClientRect())) problems.push(`${name}: ${axis} title on "${tick.textContent}"`);
      }
    }
  }
  return { count: plots.length, problems };
}
