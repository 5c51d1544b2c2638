//! The batch-assignment benchmark format (`shared/bench/README.md`): CSV with
//! header `request,volunteer,cost`, one candidate edge per line.

use std::io;

use thiserror::Error;

use crate::assignment::{Edge, Match};

/// Why an instance file was rejected. Line numbers are 1-based and count the
/// header as line 1; columns are 1-based.
#[derive(Debug, Error)]
pub enum InstanceError {
    /// The file is empty.
    #[error("line 1: missing header request,volunteer,cost")]
    MissingHeader,
    /// The first three header fields are not `request,volunteer,cost`.
    #[error("line 1: header must start with request,volunteer,cost, found {found:?}")]
    BadHeader {
        /// The header line as read.
        found: String,
    },
    /// A data line has fewer than three fields.
    #[error("line {line}, column {column} ({name}): missing value")]
    MissingField {
        /// Line number.
        line: u64,
        /// Column number of the first missing field.
        column: usize,
        /// Its name.
        name: &'static str,
    },
    /// A field does not parse or is out of range.
    #[error("line {line}, column {column} ({name}): {expected}, found {value:?}")]
    BadField {
        /// Line number.
        line: u64,
        /// Column number.
        column: usize,
        /// Column name.
        name: &'static str,
        /// The text found.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Malformed CSV (e.g. an unterminated quote) or invalid UTF-8.
    #[error("line {line}: {message}")]
    Csv {
        /// Line number.
        line: u64,
        /// The CSV reader's description.
        message: String,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

const COLUMNS: [&str; 3] = ["request", "volunteer", "cost"];

impl From<csv::Error> for InstanceError {
    fn from(e: csv::Error) -> Self {
        let line = e.position().map_or(0, csv::Position::line);
        let message = e.to_string();
        match e.into_kind() {
            csv::ErrorKind::Io(io) => InstanceError::Io(io),
            _ => InstanceError::Csv { line, message },
        }
    }
}

/// Reads a benchmark instance: header `request,volunteer,cost` (extra
/// columns are ignored), then one edge per line; request and volunteer ids
/// are non-negative integers up to `i64::MAX`, cost a non-negative finite
/// number. Blank lines are skipped; fields may be surrounded by spaces.
///
/// # Errors
/// [`InstanceError`] naming the line and column of the first bad value, or
/// the I/O error.
pub fn read_instance<R: io::Read>(reader: R) -> Result<Vec<Edge>, InstanceError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record)? {
        return Err(InstanceError::MissingHeader);
    }
    let header_ok = record.len() >= 3
        && COLUMNS.iter().enumerate().all(|(i, name)| {
            // A UTF-8 byte-order mark may precede the first name.
            let field = record[i]
                .strip_prefix(b"\xEF\xBB\xBF")
                .unwrap_or(&record[i]);
            field == name.as_bytes()
        });
    if !header_ok {
        let found = record
            .iter()
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(",");
        return Err(InstanceError::BadHeader { found });
    }

    let mut edges = Vec::new();
    while csv.read_byte_record(&mut record)? {
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        if record.len() < 3 {
            return Err(InstanceError::MissingField {
                line,
                column: record.len() + 1,
                name: COLUMNS[record.len()],
            });
        }
        let bad = |column: usize, expected: &'static str| InstanceError::BadField {
            line,
            column: column + 1,
            name: COLUMNS[column],
            value: String::from_utf8_lossy(&record[column]).into_owned(),
            expected,
        };
        let id = |column: usize| {
            std::str::from_utf8(&record[column])
                .ok()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty())
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| bad(column, "a non-negative integer id up to 2^63-1"))
        };
        let request = id(0)?;
        let volunteer = id(1)?;
        let cost = std::str::from_utf8(&record[2])
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|c| c.is_finite() && *c >= 0.0)
            .ok_or_else(|| bad(2, "a non-negative finite cost"))?;
        edges.push(Edge {
            request,
            volunteer,
            cost,
        });
    }
    Ok(edges)
}

/// Writes matched pairs as CSV `request,volunteer,cost` (the same format,
/// as `assign_reference.py --assignments` writes).
///
/// # Errors
/// The writer's I/O error.
pub fn write_assignments<W: io::Write>(mut writer: W, assignments: &[Match]) -> io::Result<()> {
    writeln!(writer, "request,volunteer,cost")?;
    for m in assignments {
        writeln!(writer, "{},{},{}", m.request, m.volunteer, m.cost)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edges() {
        let text = "request,volunteer,cost\n0,5,1.5\n\n 2 , 9223372036854775807 , 0\n";
        let edges = read_instance(text.as_bytes()).unwrap();
        assert_eq!(
            edges,
            vec![
                Edge {
                    request: 0,
                    volunteer: 5,
                    cost: 1.5
                },
                Edge {
                    request: 2,
                    volunteer: i64::MAX,
                    cost: 0.0
                },
            ]
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            ("", "line 1: missing header"),
            ("a,b,c\n", "line 1: header"),
            (
                "request,volunteer,cost\n1,2\n",
                "line 2, column 3 (cost): missing",
            ),
            (
                "request,volunteer,cost\n1,2,3\n-1,2,3\n",
                "line 3, column 1 (request)",
            ),
            (
                "request,volunteer,cost\n1,x,3\n",
                "line 2, column 2 (volunteer)",
            ),
            (
                "request,volunteer,cost\n1,2,-0.5\n",
                "line 2, column 3 (cost)",
            ),
            (
                "request,volunteer,cost\n1,2,NaN\n",
                "line 2, column 3 (cost)",
            ),
            (
                "request,volunteer,cost\n1,2,inf\n",
                "line 2, column 3 (cost)",
            ),
            (
                "request,volunteer,cost\n1,99999999999999999999,1\n",
                "line 2, column 2",
            ),
        ];
        for (text, want) in cases {
            let err = read_instance(text.as_bytes()).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let m = [Match {
            request: 3,
            volunteer: 4,
            cost: 0.25,
        }];
        let mut out = Vec::new();
        write_assignments(&mut out, &m).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "request,volunteer,cost\n3,4,0.25\n"
        );
    }
}
