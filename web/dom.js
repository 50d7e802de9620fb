// Building DOM nodes without markup. Catalogue text (titles, descriptions, attribute values)
// comes from whoever filled the catalogue, so it only ever reaches the page as text nodes and
// attribute values, never through innerHTML: a title like "<img onerror=...>" shows as written.

// h('li', {class: 'card', dataset: {id}}, child, 'text', [more]) -> element. Attributes whose
// value is null, undefined or false are left out; true gives an empty attribute; on<event>
// keys add listeners.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// "t-shirt" -> "T-shirt": facet names come folded (lower case, no accents).
export const capitalise = (s) => (s ? s.charAt(0).toLocaleUpperCase() + s.slice(1) : s);
