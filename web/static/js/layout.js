// Grid layout: every tile gets the largest 16:9 box that lets all of them
// fit the grid's area, the way meeting apps tile faces. CSS alone cannot
// do this (auto-fit columns leave tiles small and the area half empty).
// A lecture's stage has its own shapes: the presenter's share with its
// camera beside it, and a row of thumbnails under them.

const ASPECT = 16 / 9;

// bestTileWidth returns the widest tile for count tiles in a width x height
// area with gap pixels between tiles, trying every column count.
export function bestTileWidth(count, width, height, gap) {
  if (count < 1 || width <= 0 || height <= 0) return 0;
  let best = 0;
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const byWidth = (width - gap * (cols - 1)) / cols;
    const byHeight = ((height - gap * (rows - 1)) / rows) * ASPECT;
    best = Math.max(best, Math.min(byWidth, byHeight));
  }
  return Math.floor(best);
}

// layoutGrid sizes the tiles of one container through the --tile-w custom
// property (the CSS derives the height from the aspect ratio).
export function layoutGrid(container) {
  const tiles = container.querySelectorAll(':scope > .tile');
  const gap = parseFloat(getComputedStyle(container).columnGap) || 0;
  const w = bestTileWidth(tiles.length, container.clientWidth, container.clientHeight, gap);
  container.style.setProperty('--tile-w', `${Math.max(w, 120)}px`);
}

// MIN_TILE is the narrowest a tile gets; a row that needs more room scrolls.
const MIN_TILE = 120;

function gapOf(container) {
  return parseFloat(getComputedStyle(container).columnGap) || 0;
}

// rowTileWidth is the widest tile for count tiles side by side in one row.
export function rowTileWidth(count, width, height, gap) {
  if (count < 1 || width <= 0 || height <= 0) return 0;
  return Math.floor(Math.min((width - gap * (count - 1)) / count, height * ASPECT));
}

// layoutRow sizes the tiles of a container as one row (a lecture's other
// speakers under the stage).
export function layoutRow(container) {
  const tiles = container.querySelectorAll(':scope > .tile');
  const w = rowTileWidth(tiles.length, container.clientWidth, container.clientHeight, gapOf(container));
  container.style.setProperty('--tile-w', `${Math.max(w, MIN_TILE)}px`);
}

// sideWidth is the width of the presenter's camera beside its share: a
// fifth of the stage, between 160 and 360 pixels, and never taller than
// the stage.
export function sideWidth(width, height) {
  return Math.floor(Math.min(Math.max(width * 0.2, 160), 360, height * ASPECT, width / 2));
}

// layoutStage sizes a lecture's stage: side (the presenter's camera, or
// null) gets its own width, the shares share the rest in one row.
export function layoutStage(stage, side) {
  const gap = gapOf(stage);
  const width = stage.clientWidth;
  const height = stage.clientHeight;
  let rest = width;
  if (side) {
    const w = sideWidth(width, height);
    side.style.setProperty('--tile-w', `${Math.max(w, MIN_TILE)}px`);
    rest = width - w - gap;
  }
  const shares = [...stage.querySelectorAll(':scope > .tile')].filter((t) => t !== side);
  const w = rowTileWidth(shares.length, rest, height, gap);
  stage.style.setProperty('--tile-w', `${Math.max(w, MIN_TILE)}px`);
}
