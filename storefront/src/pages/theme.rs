//! The tenant's theme colour and the colours derived from it so text stays readable: WCAG 2.x
//! relative luminance and contrast ratio, pure functions.

/// Used when the tenant sets no colour or one we cannot parse.
pub const DEFAULT_THEME: Rgb = Rgb(0x0f, 0x76, 0x6e);
/// WCAG AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
// Pure black: against it or white, every colour reaches at least 4.58:1.
const INK: Rgb = Rgb(0, 0, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rgb` or `#rrggbb` only: anything else (names, `url(...)`, `;}`) is refused, so a
    /// tenant's colour can never inject CSS.
    pub fn parse(raw: &str) -> Option<Rgb> {
        let hex = raw.trim().strip_prefix('#')?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize, len: usize| u8::from_str_radix(hex.get(i..i + len)?, 16).ok();
        match hex.len() {
            3 => Some(Rgb(digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17)),
            6 => Some(Rgb(digit(0, 2)?, digit(2, 2)?, digit(4, 2)?)),
            _ => None,
        }
    }

    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }

    fn darken(self, factor: f64) -> Rgb {
        let f = |c: u8| (f64::from(c) * factor).round().clamp(0.0, 255.0) as u8;
        Rgb(f(self.0), f(self.1), f(self.2))
    }
}

pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The colours a page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Backgrounds of the header and buttons: the tenant's colour as given.
    pub brand: Rgb,
    /// Text on `brand`: white or ink, whichever contrasts more (one always reaches 4.5:1).
    pub on_brand: Rgb,
    /// Links and accents on the white page: the brand colour darkened until it reaches 4.5:1.
    pub accent: Rgb,
}

impl Palette {
    pub fn for_theme(theme: Option<&str>) -> Palette {
        let brand = theme.and_then(Rgb::parse).unwrap_or(DEFAULT_THEME);
        let on_brand = if contrast(brand, WHITE) >= contrast(brand, INK) {
            WHITE
        } else {
            INK
        };
        let mut accent = brand;
        while contrast(accent, WHITE) < MIN_CONTRAST {
            accent = accent.darken(0.9);
        }
        Palette {
            brand,
            on_brand,
            accent,
        }
    }

    /// The stylesheet fragment that themes the shared stylesheet.
    pub fn css(&self) -> String {
        format!(
            ":root{{--brand:{};--on-brand:{};--accent:{}}}\n",
            self.brand.hex(),
            self.on_brand.hex(),
            self.accent.hex()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_only() {
        assert_eq!(Rgb::parse("#0f766e"), Some(Rgb(0x0f, 0x76, 0x6e)));
        assert_eq!(Rgb::parse("#fff"), Some(WHITE));
        for bad in ["red", "#12345", "#gggggg", "#000;}body{x:url(a)}", "", "#"] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn known_contrast_ratios() {
        assert!((contrast(WHITE, Rgb(0, 0, 0)) - 21.0).abs() < 1e-9);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn every_theme_gets_readable_text() {
        for theme in [
            "#ffff00", "#0000ff", "#777777", "#ffffff", "#000000", "#0f766e", "#f472b6", "nonsense",
        ] {
            let p = Palette::for_theme(Some(theme));
            assert!(
                contrast(p.brand, p.on_brand) >= MIN_CONTRAST,
                "{theme} on-brand"
            );
            assert!(contrast(p.accent, WHITE) >= MIN_CONTRAST, "{theme} accent");
        }
        assert_eq!(Palette::for_theme(Some("#ffff00")).on_brand, INK);
        assert_eq!(Palette::for_theme(Some("#1e3a8a")).on_brand, WHITE);
        assert_eq!(Palette::for_theme(None).brand, DEFAULT_THEME);
    }
}
