// The review board's script (Gradio runs it with `element`, `props`, `server`, `trigger`
// and `watch` in scope). It draws the queue list and the panels, keeps the panels of the
// images it has seen, fetches the neighbours of the current image ahead of the reviewer,
// and tells the server which image is shown (the "navigate" event) once it is drawn.
const CACHE_LIMIT = 48;
const NEIGHBOURS_WAIT_MS = 1500;
const $ = (selector) => element.querySelector(selector);
const cache = new Map();
let board = { queue: [], position: 0, display: null, score_label: 'score', goto: null, to_top: false, revision: -1 };
let written = null;
let wanted = null;
let announced = '';
let moved = false;

const images = {};
const captions = Object.fromEntries(props.panel_layout);
for (const [key, caption] of props.panel_layout) {
  const figure = document.createElement('figure');
  figure.className = 'panel';
  figure.dataset.panel = key;
  const frame = figure.appendChild(document.createElement('div'));
  frame.className = 'zoom-frame';
  const content = frame.appendChild(document.createElement('div'));
  content.className = 'zoom-content';
  if (key === props.slider.key) {
    content.classList.add('ab-frame');
    images.slider_b = content.appendChild(document.createElement('img'));
    images.slider_a = content.appendChild(document.createElement('img'));
    images.slider_a.className = 'ab-a';
    const range = document.createElement('input');
    Object.assign(range, { type: 'range', min: 0, max: 100, value: 50, className: 'ab-position' });
    range.setAttribute('aria-label', caption);
    const clip = () => { images.slider_a.style.clipPath = `inset(0 ${100 - range.value}% 0 0)`; };
    range.addEventListener('input', clip);
    clip();
    figure.append(range);
  } else {
    images[key] = content.appendChild(document.createElement('img'));
  }
  figure.prepend(document.createElement('figcaption'));
  $('.panels').appendChild(figure);
}
const sliderSides = { slider_a: props.slider.left, slider_b: props.slider.right };

// Captions name the models of the pair shown ("A: camvid-ce"): the layout's captions hold
// {a} and {b} for them.
function named(caption) {
  const { model_a: a, model_b: b } = board.display || { model_a: 'A', model_b: 'B' };
  return caption.replaceAll('{a}', a).replaceAll('{b}', b);
}

function nameCaptions() {
  element.querySelectorAll('.panels figure').forEach((figure) => {
    figure.querySelector('figcaption').textContent = named(captions[figure.dataset.panel]);
  });
  for (const [name, image] of Object.entries(images)) {
    image.alt = named(captions[sliderSides[name] || name]);
  }
}

// Zoom and pan: one view for every panel of the image, so they stay aligned. The wheel or
// the buttons zoom (around the pointer or the middle), a drag pans, a double-click resets.
// The view is kept in fractions of a panel, so it stays while stepping through the queue;
// once it shows more screen pixels than the panels have, the image's panels are fetched
// again at their full resolution.
const MAX_ZOOM = 32;
const ZOOM_STEP = 1.5;
const view = { scale: 1, x: 0, y: 0 };
let drag = null;
let drawn = null;

function applyView() {
  view.scale = Math.min(Math.max(view.scale, 1), MAX_ZOOM);
  view.x = Math.min(0, Math.max(1 - view.scale, view.x));
  view.y = Math.min(0, Math.max(1 - view.scale, view.y));
  const transform = `translate(${view.x * 100}%, ${view.y * 100}%) scale(${view.scale})`;
  element.querySelectorAll('.zoom-content').forEach((content) => { content.style.transform = transform; });
  $('.panels').classList.toggle('zoomed', view.scale > 1);
  $('.zoom-level').textContent = `zoom ${view.scale.toFixed(1)}×`;
  wantFullResolution();
}

function zoomAt(factor, x, y) {
  const scale = Math.min(Math.max(view.scale * factor, 1), MAX_ZOOM);
  view.x = x - (scale * (x - view.x)) / view.scale;
  view.y = y - (scale * (y - view.y)) / view.scale;
  view.scale = scale;
  applyView();
}

function resetView() {
  Object.assign(view, { scale: 1, x: 0, y: 0 });
  applyView();
}

function wantFullResolution() {
  const input = images.image;
  if (!drawn || drawn.answer.full_resolution || drawn.answer.upgrading || !input.naturalWidth) return;
  const onScreen = input.getBoundingClientRect().width * (window.devicePixelRatio || 1);
  if (onScreen <= input.naturalWidth) return;
  const { answer, key } = drawn;
  answer.upgrading = true;
  server.fetch_panels(answer.id, board.display, true).then(async (full) => {
    if (!full || full.error) return;
    const prepared = prepare(full);
    if (cache.has(key)) cache.set(key, Promise.resolve(prepared));
    if (wanted === key && (await draw(prepared, key))) drawn = { answer: prepared, key };
  }).catch(() => {});
}

function framePoint(event) {
  const rect = event.target.closest('.zoom-frame').getBoundingClientRect();
  return { x: (event.clientX - rect.left) / rect.width, y: (event.clientY - rect.top) / rect.height, rect };
}

const panelsBox = $('.panels');
panelsBox.addEventListener('wheel', (event) => {
  if (!event.target.closest('.zoom-frame')) return;
  event.preventDefault();
  const { x, y } = framePoint(event);
  zoomAt(Math.exp(-event.deltaY * 0.002), x, y);
}, { passive: false });
panelsBox.addEventListener('pointerdown', (event) => {
  if (!event.target.closest('.zoom-frame') || event.button !== 0) return;
  const { rect } = framePoint(event);
  drag = { id: event.pointerId, x: event.clientX, y: event.clientY, from: { ...view }, rect };
  event.target.closest('.zoom-frame').setPointerCapture(event.pointerId);
  event.preventDefault();
});
panelsBox.addEventListener('pointermove', (event) => {
  if (!drag || drag.id !== event.pointerId) return;
  view.x = drag.from.x + (event.clientX - drag.x) / drag.rect.width;
  view.y = drag.from.y + (event.clientY - drag.y) / drag.rect.height;
  applyView();
});
for (const end of ['pointerup', 'pointercancel']) {
  panelsBox.addEventListener(end, () => { drag = null; });
}
panelsBox.addEventListener('dblclick', (event) => {
  if (event.target.closest('.zoom-frame')) resetView();
});
$('#zoom-in').addEventListener('click', () => zoomAt(ZOOM_STEP, 0.5, 0.5));
$('#zoom-out').addEventListener('click', () => zoomAt(1 / ZOOM_STEP, 0.5, 0.5));
$('#zoom-reset').addEventListener('click', resetView);

function keyOf(id) {
  return `${id}\n${JSON.stringify(board.display)}`;
}

function request(id) {
  const key = keyOf(id);
  let promise = cache.get(key);
  if (promise) {
    cache.delete(key);
  } else {
    promise = server.fetch_panels(id, board.display, false).then((answer) => {
      if (!answer || answer.error) throw new Error(answer ? answer.error : 'no answer from the server');
      return prepare(answer);
    });
    promise.catch(() => cache.delete(key));
  }
  cache.set(key, promise);
  while (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
  return promise;
}

// Each answer's pictures are decoded as soon as it arrives (a prefetched neighbour too),
// and kept with it: showing an image again is then only a swap of elements.
function prepare(answer) {
  const { left, right } = props.slider;
  const sources = { ...answer.panels, slider_a: answer.panels[left], slider_b: answer.panels[right] };
  answer.images = {};
  answer.ready = Promise.all(Object.keys(images).map(async (name) => {
    if (!sources[name]) return;
    const image = new Image();
    image.draggable = false;
    image.src = sources[name];
    await image.decode().catch(() => {});
    answer.images[name] = image;
  }));
  return answer;
}

async function draw(answer, key) {
  await answer.ready;
  if (wanted !== key) return false;
  for (const [name, shown] of Object.entries(images)) {
    const image = answer.images[name];
    shown.closest('figure').hidden = !image;
    if (!image || image === shown) continue;
    image.className = shown.className;
    image.alt = shown.alt;
    image.style.cssText = shown.style.cssText;
    image.draggable = false;
    shown.replaceWith(image);
    images[name] = image;
  }
  nameCaptions();
  const title = $('.title');
  title.replaceChildren();
  title.appendChild(document.createElement('strong')).textContent = answer.id;
  if (answer.tags.length) title.append(` · ${answer.tags.join(', ')}`);
  return true;
}

// The follow-up work (the Gradio event for the details, the neighbours' requests) waits
// until the frame showing the panels is out: the start of a Gradio event alone keeps the
// page busy for longer than drawing them.
function afterPaint() {
  const frame = () => new Promise((done) => requestAnimationFrame(done));
  return frame().then(frame).then(() => new Promise((done) => setTimeout(done, 0)));
}

function markCurrent() {
  const rows = element.querySelectorAll('.queue tbody tr');
  rows.forEach((row) => row.classList.remove('current'));
  const row = rows[board.position];
  if (row) {
    row.classList.add('current');
    row.scrollIntoView({ block: 'nearest' });
  }
  $('.position').textContent = board.queue.length
    ? `Image ${board.position + 1} of ${board.queue.length} · keys: n / p, + / - / 0 zoom`
    : 'No image matches the filters.';
}

// Panels of another image never stay up under a title they do not belong to.
function blank(titleText, message) {
  wanted = null;
  drawn = null;
  $('.panels').classList.remove('loading');
  element.querySelectorAll('.panels figure').forEach((figure) => { figure.hidden = true; });
  $('.title').textContent = titleText;
  $('.board-error').textContent = message;
}

// Tells the page which image is drawn: the "navigate" event (the details' tables) and a
// `segbench:shown` document event (the plots script's cue, kept as window.segbenchShown
// for a script that loads later). Resolves once the listeners have drawn what they fetch.
function announce(shown, id) {
  if (shown === announced) return Promise.resolve();
  announced = shown;
  trigger('navigate');
  const detail = { id: id || null, display: board.display, drawing: [] };
  window.segbenchShown = detail;
  document.dispatchEvent(new CustomEvent('segbench:shown', { detail }));
  return Promise.allSettled(detail.drawing);
}

// The view pane is aria-busy from a move until the image it asked for is on screen with
// its plots and its neighbours are asked for (or its failure is on screen), so that
// assistive technology, and the board's tests, know when what it shows is final. A later
// move takes over: only the latest one clears it.
let moves = 0;
async function show() {
  const move = ++moves;
  $('.view-pane').setAttribute('aria-busy', 'true');
  try {
    await showCurrent();
  } finally {
    if (move === moves) $('.view-pane').setAttribute('aria-busy', 'false');
  }
}

async function showCurrent() {
  markCurrent();
  const entry = board.queue[board.position];
  if (!entry || !board.display) {
    blank('', '');
    announce('');
    return;
  }
  const key = keyOf(entry.id);
  const shown = `${entry.id}\n${board.display.model_a}\n${board.display.model_b}`;
  wanted = key;
  const pending = request(entry.id);
  const timer = setTimeout(() => { if (wanted === key) $('.panels').classList.add('loading'); }, 80);
  let answer;
  try {
    answer = await pending;
  } catch (error) {
    if (wanted !== key) return;
    blank(entry.id, `Could not show ${entry.id}: ${error.message}`);
    announce(shown, entry.id);
    return;
  } finally {
    clearTimeout(timer);
  }
  if (wanted !== key || !(await draw(answer, key))) return;
  drawn = { answer, key };
  wantFullResolution();
  $('.panels').classList.remove('loading');
  $('.board-error').textContent = '';
  await afterPaint();
  if (wanted !== key) return;
  // The neighbours are asked for once the plots of this image are in (or after a while):
  // asked at once, they would take the server's cores from the image being looked at.
  const waited = new Promise((done) => setTimeout(done, NEIGHBOURS_WAIT_MS));
  await Promise.race([announce(shown, entry.id), waited]);
  if (wanted !== key) return;
  for (const step of [1, -1]) {
    const neighbour = board.queue[(board.position + step + board.queue.length) % board.queue.length];
    request(neighbour.id).catch(() => {});
  }
}

function write() {
  written = JSON.stringify(board);
  props.value = written;
}

function go(position) {
  moved = true;
  const count = board.queue.length;
  if (!count) return;
  board.position = ((position % count) + count) % count;
  write();
  show();
}

function receive() {
  if (!props.value || props.value === written) return;
  let incoming;
  try {
    incoming = JSON.parse(props.value);
  } catch (error) {
    $('.board-error').textContent = `The review board got a malformed state: ${error.message}`;
    return;
  }
  // The image to keep: the one the server names, else the one on screen, else (a board
  // drawn anew, as after switching tabs) the one its value was left at.
  const onScreen = board.queue[board.position] || incoming.queue[incoming.position];
  const top = incoming.to_top && !moved && incoming.queue[0];
  const target = incoming.goto ?? (top ? top.id : onScreen && onScreen.id);
  const index = incoming.queue.findIndex((entry) => entry.id === target);
  board = { ...incoming, goto: null, to_top: false, position: index >= 0 ? index : 0 };
  const rows = board.queue.map((entry, index) => {
    const row = document.createElement('tr');
    row.dataset.index = index;
    row.dataset.id = entry.id;
    const where = entry.sequence ? ` (${entry.sequence})` : '';
    row.title = `${entry.id}${where} · ${entry.status || 'unflagged'}`;
    const score = entry.score === null ? '–' : entry.score.toFixed(3);
    for (const text of [entry.id.split('/').pop(), score, entry.flags]) {
      row.appendChild(document.createElement('td')).textContent = text;
    }
    return row;
  });
  $('.queue tbody').replaceChildren(...rows);
  const count = board.queue.length;
  $('.queue-caption').textContent = `${count} image${count === 1 ? '' : 's'} · score: ${board.score_label}`;
  write();
  show();
}

$('.queue tbody').addEventListener('click', (event) => {
  const row = event.target.closest('tr');
  if (row) go(Number(row.dataset.index));
});
$('#next-image').addEventListener('click', () => go(board.position + 1));
$('#previous-image').addEventListener('click', () => go(board.position - 1));

if (window.segbenchBoardKeys) document.removeEventListener('keydown', window.segbenchBoardKeys);
window.segbenchBoardKeys = (event) => {
  const target = event.target || {};
  if (['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName) || target.isContentEditable) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const steps = { n: 1, j: 1, p: -1, k: -1 };
  const zooms = { '+': ZOOM_STEP, '=': ZOOM_STEP, '-': 1 / ZOOM_STEP };
  if (event.key === '0') resetView();
  else if (event.key in zooms) zoomAt(zooms[event.key], 0.5, 0.5);
  else if (event.key in steps) go(board.position + steps[event.key]);
  else return;
  event.preventDefault();
};
document.addEventListener('keydown', window.segbenchBoardKeys);

watch('value', receive);
applyView();
receive();
