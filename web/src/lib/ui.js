// DOM helpers. Text goes in through textContent only (no HTML injection
// from chat messages, addresses or server errors).

export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function setText(sel, text) {
  const e = typeof sel === 'string' ? $(sel) : sel;
  if (e) e.textContent = text;
}

// notice shows a short message in the page's live region (announced by
// screen readers) and keeps the last few.
export function notice(text, kind = 'info') {
  const box = $('#notices');
  if (!box) return;
  const item = el('li', { class: `notice ${kind}`, text });
  box.prepend(item);
  while (box.children.length > 4) box.lastChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 15000 : 7000);
}

export function fmtTime(d) {
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
