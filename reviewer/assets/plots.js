// The plots under the review board (Gradio runs it with `element`, `props`, `server` and
// `watch` in scope): the per-class IoU bars and both confusion heatmaps of the image the
// board shows. The board announces each image it has drawn with a `segbench:shown` event;
// this script asks the server for the image's figures directly and redraws its three plots
// in place (Plotly.react), instead of a Gradio event replacing three Plot components, which
// draws each figure twice from scratch. The value is the confusion matrix kind ("groups" or
// "classes"), set by the page's radio.
const $ = (selector) => element.querySelector(selector);
const divs = [...element.querySelectorAll('.review-plot')];
const CACHE_LIMIT = 48;
const seen = new Map();
let shown = null;
let asked = 0;

// Plotly comes from the bundle Gradio's own Plot component loads (the same module, so the
// Dataset tab's plots and these share one copy); importing it sets window.Plotly.
async function plotly() {
  if (!window.Plotly) {
    if (!props.plotly_module) throw new Error('this Gradio build has no Plotly bundle');
    await import(new URL(props.plotly_module, document.baseURI).href);
  }
  return window.Plotly;
}

function empty(div) {
  if (window.Plotly) window.Plotly.purge(div);
  div.replaceChildren();
  div.hidden = true;
}

function clear(message) {
  divs.forEach(empty);
  $('.plots-error').textContent = message;
}

// Every plot of the answer is shown before any is drawn: plotly sizes a figure to its
// container as it is then (a hidden one counts as 700 px wide, and the heatmaps share a row).
async function draw(figures) {
  const Plotly = await plotly();
  const parsed = divs.map((div, index) => figures[index] && JSON.parse(figures[index]));
  divs.forEach((div, index) => { div.hidden = !parsed[index]; });
  await Promise.all(divs.map((div, index) => {
    const figure = parsed[index];
    if (!figure) return empty(div);
    figure.layout.autosize = true;
    figure.layout.margin = { ...figure.layout.margin, autoexpand: true };
    return Plotly.react(div, figure.data, figure.layout, { responsive: true, displaylogo: false });
  }));
}

// The figures of the images seen are kept (a few kilobytes each), so a revisit asks the
// server for nothing, as the board's panels.
function figuresOf(id, display, matrix) {
  const key = `${id}\n${display.model_a}\n${display.model_b}\n${matrix}`;
  let answer = seen.get(key);
  if (!answer) {
    answer = server.fetch_plots(id, display, matrix).then((reply) => {
      if (!reply || reply.error) throw new Error(reply ? reply.error : 'no answer from the server');
      return reply;
    });
    answer.catch(() => seen.delete(key));
  }
  seen.delete(key);
  seen.set(key, answer);
  while (seen.size > CACHE_LIMIT) seen.delete(seen.keys().next().value);
  return answer;
}

// Resolves once the figures of the image shown are drawn (or their failure is said), so
// the board can hold back its requests for the neighbours until then.
async function refresh() {
  const ask = ++asked;
  if (!shown || !shown.id) {
    clear('');
    return;
  }
  try {
    const answer = await figuresOf(shown.id, shown.display, props.value || 'groups');
    if (ask !== asked) return;
    await draw(answer.figures);
    if (ask === asked) $('.plots-error').textContent = '';
  } catch (error) {
    if (ask === asked) clear(`Could not draw the plots of ${shown.id}: ${error.message}`);
  }
}

if (window.segbenchPlotsListener) document.removeEventListener('segbench:shown', window.segbenchPlotsListener);
window.segbenchPlotsListener = (event) => {
  shown = event.detail;
  event.detail.drawing.push(refresh());
};
document.addEventListener('segbench:shown', window.segbenchPlotsListener);
watch('value', refresh);
if (window.segbenchShown) {
  shown = window.segbenchShown;
  refresh();
}
