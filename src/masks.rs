//! Class maps and their clean-up: every connected region of one class smaller than a minimum
//! size (specks of thinning inside hair, pinholes of hair inside bare skin, stray scalp pixels
//! on the backdrop) takes the class that surrounds it.

/// One class id per pixel, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassMap {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl ClassMap {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> ClassMap {
        assert_eq!(data.len(), width * height, "class map size");
        ClassMap { width, height, data }
    }

    /// Builds a map from rows of digits, for tests: `["0011", "0111"]`.
    pub fn from_rows(rows: &[&str]) -> ClassMap {
        let width = rows.first().map_or(0, |r| r.len());
        let data = rows.iter().flat_map(|r| r.bytes().map(|b| b - b'0')).collect();
        ClassMap::new(width, rows.len(), data)
    }

    pub fn get(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }

    /// Pixels per class id (ids beyond `n` are ignored).
    pub fn histogram(&self, n: usize) -> Vec<u64> {
        let mut h = vec![0u64; n];
        for &c in &self.data {
            if (c as usize) < n {
                h[c as usize] += 1;
            }
        }
        h
    }
}

/// 4-connected regions of equal class: a region id per pixel, and each region's class and size.
pub fn regions(map: &ClassMap) -> (Vec<u32>, Vec<(u8, usize)>) {
    let (w, h) = (map.width, map.height);
    let mut id = vec![u32::MAX; w * h];
    let mut info = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if id[start] != u32::MAX {
            continue;
        }
        let class = map.data[start];
        let rid = info.len() as u32;
        id[start] = rid;
        stack.push(start);
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if id[j] == u32::MAX && map.data[j] == class {
                    id[j] = rid;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        info.push((class, size));
    }
    (id, info)
}

/// Relabels every region smaller than `min_pixels` with the class most common along its
/// border (ties to the lower class id, so the result is deterministic). One pass: merging can
/// only grow regions, so no region that was large enough becomes too small.
pub fn clean(map: &ClassMap, min_pixels: usize, classes: usize) -> ClassMap {
    let (w, h) = (map.width, map.height);
    let (id, info) = regions(map);
    let mut border: Vec<Vec<u32>> = vec![Vec::new(); info.len()];
    for i in 0..w * h {
        let r = id[i] as usize;
        if info[r].1 >= min_pixels {
            continue;
        }
        let (x, y) = (i % w, i / w);
        let neighbours = [(x > 0).then(|| i - 1), (x + 1 < w).then(|| i + 1), (y > 0).then(|| i - w), (y + 1 < h).then(|| i + w)];
        for j in neighbours.into_iter().flatten() {
            if id[j] as usize != r {
                let votes = &mut border[r];
                if votes.is_empty() {
                    votes.resize(classes, 0);
                }
                if let Some(v) = votes.get_mut(map.data[j] as usize) {
                    *v += 1;
                }
            }
        }
    }
    let target: Vec<u8> = info
        .iter()
        .enumerate()
        .map(|(r, &(class, size))| {
            if size >= min_pixels || border[r].iter().all(|&v| v == 0) {
                class
            } else {
                let best = border[r].iter().copied().max().unwrap_or(0);
                border[r].iter().position(|&v| v == best).unwrap_or(class as usize) as u8
            }
        })
        .collect();
    ClassMap::new(w, h, id.iter().map(|&r| target[r as usize]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_four_connected() {
        let m = ClassMap::from_rows(&["110", "001", "011"]);
        let (_, info) = regions(&m);
        // The two 1-regions touch only diagonally: separate.
        assert_eq!(info, vec![(1, 2), (0, 1), (0, 3), (1, 3)]);
    }

    #[test]
    fn small_islands_and_holes_take_the_surrounding_class() {
        let m = ClassMap::from_rows(&[
            "11111", //
            "11211", // a one-pixel thinning speck in hair
            "11111", //
            "33333", //
            "33133", // a one-pixel hair pinhole in bare skin
        ]);
        let c = clean(&m, 2, 5);
        assert_eq!(c, ClassMap::from_rows(&["11111", "11111", "11111", "33333", "33333"]));
    }

    #[test]
    fn large_regions_are_kept_and_ties_go_to_the_lower_class() {
        let m = ClassMap::from_rows(&["1122", "1422", "1122"]);
        // The scar pixel's border: hair left, up and down, thinning right: hair wins.
        let c = clean(&m, 2, 5);
        assert_eq!(c, ClassMap::from_rows(&["1122", "1122", "1122"]));
        let tie = ClassMap::from_rows(&["2", "2", "4", "1", "1"]);
        assert_eq!(clean(&tie, 2, 5).data, vec![2, 2, 1, 1, 1]);
        assert_eq!(clean(&m, 1, 5), m, "min 1 changes nothing");
    }
}
