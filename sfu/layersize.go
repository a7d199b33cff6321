package sfu

// guessSize is layer i's size, or the nearest known layer's scaled by 2
// per layer between them; 0x0 when none is known.
func guessSize(sizes [maxLayers][2]int, i int) (w, h int) {
	best := -1
	for j := range sizes {
		if sizes[j][0] != 0 && (best < 0 || abs(j-i) < abs(best-i)) {
			best = j
		}
	}
	if best < 0 {
		return 0, 0
	}
	w, h = sizes[best][0], sizes[best][1]
	for k := best; k < i; k++ {
		w, h = w*2, h*2
	}
	for k := best; k > i; k-- {
		w, h = w/2, h/2
	}
	return w, h
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
