//! The shipped GB/T 2260 division list (`data/cn-adcodes.csv`, from the
//! `cpca` package, MIT licence) and the import of a province's
//! province → city → county tree into `org_unit`.

use homefront_domain::Adcode;
use homefront_domain::adcode::DivisionLevel;
use homefront_domain::org::{OrgKind, OrgPath};

use crate::{Result, Store};

/// The CSV shipped in the binary: header
/// `adcode,name,longitude,latitude,name_en`.
pub const ADCODES_CSV: &str = include_str!("../../../data/cn-adcodes.csv");

/// Chinese name → English name (Hanyu Pinyin, the `name_en` column that
/// `scripts/division-names.py` writes from pypinyin's dictionary).
static ENGLISH: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static str>> =
    std::sync::LazyLock::new(|| {
        ADCODES_CSV
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cells = line.split(',');
                let name = cells.nth(1)?;
                let en = cells.nth(2)?;
                (!en.is_empty()).then_some((name, en))
            })
            .collect()
    });

/// The English name of a division given its Chinese name as the shipped
/// list writes it, e.g. `玄武区` → `Xuanwu District`, `南京市` → `Nanjing`;
/// `None` for a name the list does not hold (a team, an employer).
pub fn english_name(zh: &str) -> Option<&'static str> {
    ENGLISH.get(zh).copied()
}

/// One division row with coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Division {
    /// The division's code.
    pub adcode: Adcode,
    /// Its Chinese name, e.g. `玄武区`.
    pub name: String,
    /// Representative point: longitude in decimal degrees.
    pub longitude: f64,
    /// Representative point: latitude in decimal degrees.
    pub latitude: f64,
    /// Its English name, e.g. `Xuanwu District` (see [`english_name`]).
    pub name_en: String,
}

/// The divisions of province `province` (two digits, e.g. 32 for Jiangsu)
/// that carry coordinates, sorted by adcode (so parents come first). Rows
/// with empty coordinates (the `市辖区` grouping rows) are skipped.
pub fn province_divisions(province: u8) -> Vec<Division> {
    let mut reader = csv::Reader::from_reader(ADCODES_CSV.as_bytes());
    let mut out: Vec<Division> = reader
        .records()
        .filter_map(|r| r.ok())
        .filter_map(|r| {
            let adcode = Adcode::parse(r.get(0)?).ok()?;
            let longitude: f64 = r.get(2)?.trim().parse().ok()?;
            let latitude: f64 = r.get(3)?.trim().parse().ok()?;
            Some(Division {
                adcode,
                name: r.get(1)?.to_string(),
                longitude,
                latitude,
                name_en: r.get(4).unwrap_or_default().to_string(),
            })
        })
        .filter(|d| d.adcode.province() == province)
        .collect();
    out.sort_by_key(|d| d.adcode);
    out
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Units created by this run.
    pub created: usize,
    /// Units that already existed (by adcode) and were left as they were.
    pub existing: usize,
}

impl Store {
    /// Creates the org-unit tree of province `province` from the shipped
    /// division list, in one transaction. Idempotent: units are matched by
    /// adcode, so a second run creates nothing. A county whose city row is
    /// absent (directly administered counties) hangs under the province.
    ///
    /// `progress` is called after each division with (done, total).
    ///
    /// # Errors
    /// Database errors; nothing is written when one occurs.
    #[tracing::instrument(skip_all, fields(province))]
    pub async fn import_divisions(
        &self,
        province: u8,
        now_ms: i64,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportSummary> {
        let divisions = province_divisions(province);
        let total = divisions.len();
        let mut tx = self.begin_write().await?;
        let mut summary = ImportSummary::default();
        for (i, d) in divisions.iter().enumerate() {
            let code = d.adcode.as_string();
            let existing: Option<i64> =
                sqlx::query_scalar("select id from org_unit where adcode = $1")
                    .bind(&code)
                    .fetch_optional(&mut *tx)
                    .await?;
            if existing.is_some() {
                summary.existing += 1;
                progress(i + 1, total);
                continue;
            }
            // Parent: the enclosing city, else the province.
            let mut parent: Option<(i64, String)> = None;
            let mut up = d.adcode.parent();
            while let Some(code) = up {
                parent = sqlx::query_as("select id, path from org_unit where adcode = $1")
                    .bind(code.as_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if parent.is_some() {
                    break;
                }
                up = code.parent();
            }
            if parent.is_none() && d.adcode.level() != DivisionLevel::Province {
                // A division without its province row in the list: skip rather
                // than create a second root.
                progress(i + 1, total);
                continue;
            }
            let kind = OrgKind::for_level(d.adcode.level());
            // Insert with a temporary unique path, then set the real one
            // which needs the new id.
            let temp_path = format!("pending:{code}");
            let id: i64 = sqlx::query_scalar(
                "insert into org_unit (kind, adcode, name, parent_id, path, longitude, latitude, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
            )
            // A nullable double: see the crate docs.
            .persistent(false)
            .bind(kind.as_str())
            .bind(&code)
            .bind(&d.name)
            .bind(parent.as_ref().map(|p| p.0))
            .bind(&temp_path)
            .bind(d.longitude)
            .bind(d.latitude)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            let path = match &parent {
                Some((_, p)) => OrgPath::from_stored(p.clone()).child(id),
                None => OrgPath::root(id),
            };
            sqlx::query("update org_unit set path = $1 where id = $2")
                .bind(path.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            summary.created += 1;
            progress(i + 1, total);
        }
        tx.commit().await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jiangsu_has_1_13_95_with_coordinates() {
        let js = province_divisions(32);
        let count = |l| js.iter().filter(|d| d.adcode.level() == l).count();
        assert_eq!(count(DivisionLevel::Province), 1);
        assert_eq!(count(DivisionLevel::City), 13);
        assert_eq!(count(DivisionLevel::County), 95);
        assert_eq!(js[0].name, "江苏省");
        assert!(
            js.iter().all(|d| !d.name_en.is_empty()),
            "every division has an English name"
        );
    }

    #[test]
    fn english_names_use_place_name_readings() {
        for (zh, en) in [
            ("玄武区", "Xuanwu District"),
            ("南京市", "Nanjing"),
            ("江苏省", "Jiangsu"),
            ("沛县", "Pei County"),
            ("六合区", "Luhe District"),
            ("盐都区", "Yandu District"),
            ("淮安市", "Huai'an"),
            ("盱眙县", "Xuyi County"),
            ("昆山市", "Kunshan"),
        ] {
            assert_eq!(english_name(zh), Some(en), "{zh}");
        }
        assert_eq!(english_name("玄武区志愿服务队"), None);
    }
}
