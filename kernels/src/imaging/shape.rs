//! `Shape`: the `(h, w, c)` dimensions of an image buffer.

/// The dimensions of an image: `h` rows of `w` pixels of `c` interleaved channels (1 gray,
/// 2 gray+alpha, 3 RGB, 4 RGBA), stored row-major.
///
/// ```
/// use shmpool_kernels::imaging::Shape;
/// let s = Shape::new(480, 640, 3);
/// assert_eq!((s.len(), s.row_len(), s.index(1, 2, 0)), (480 * 640 * 3, 640 * 3, 640 * 3 + 6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Rows.
    pub h: usize,
    /// Pixels per row.
    pub w: usize,
    /// Channels per pixel.
    pub c: usize,
}

impl Shape {
    /// A shape of `h` rows, `w` columns and `c` channels.
    ///
    /// ```
    /// let s = shmpool_kernels::imaging::Shape::new(2, 3, 4);
    /// assert_eq!(s.pixels(), 6);
    /// ```
    pub const fn new(h: usize, w: usize, c: usize) -> Shape {
        Shape { h, w, c }
    }

    /// Samples in a buffer of this shape: `h * w * c`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::Shape::new(2, 3, 4).len(), 24);
    /// ```
    pub const fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Whether the image has no pixel.
    ///
    /// ```
    /// assert!(shmpool_kernels::imaging::Shape::new(0, 3, 1).is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels: `h * w`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::Shape::new(2, 3, 4).pixels(), 6);
    /// ```
    pub const fn pixels(&self) -> usize {
        self.h * self.w
    }

    /// Samples per row: `w * c`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::Shape::new(2, 3, 4).row_len(), 12);
    /// ```
    pub const fn row_len(&self) -> usize {
        self.w * self.c
    }

    /// The index of sample `(y, x, ch)`.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::Shape::new(2, 3, 4).index(1, 1, 1), 17);
    /// ```
    pub const fn index(&self, y: usize, x: usize, ch: usize) -> usize {
        (y * self.w + x) * self.c + ch
    }

    /// Whether the last channel is alpha (2 or 4 channels): operations on colour leave it as
    /// it is.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Shape;
    /// assert!(Shape::new(1, 1, 4).has_alpha() && !Shape::new(1, 1, 3).has_alpha());
    /// ```
    pub const fn has_alpha(&self) -> bool {
        self.c == 2 || self.c == 4
    }

    /// Colour channels: `c` less alpha.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::Shape::new(1, 1, 4).colour_channels(), 3);
    /// ```
    pub const fn colour_channels(&self) -> usize {
        if self.has_alpha() { self.c - 1 } else { self.c }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {}, {})", self.h, self.w, self.c)
    }
}
