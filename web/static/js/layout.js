// Grid layout: every tile gets the largest 16:9 box that lets all of them
// fit the grid's area, the way meeting apps tile faces. CSS alone cannot
// do this (auto-fit columns leave tiles small and the area half empty).

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
