//! Exports of visits and service logs as CSV and XLSX, with Chinese column headers.
//!
//! Township staff open these files in Excel or WPS (design §1), so they are written for
//! people: Chinese headers, names instead of ids where the caller knows them, dates as
//! `YYYY-MM-DD` text (a date typed cell would be shown in the viewer's locale), durations as
//! numbers so that they can be summed. Both formats share one description of the columns,
//! so the CSV and the workbook never disagree.

use std::collections::HashMap;

use caresync_core::domain::{
    AccountId, CHINA_OFFSET_MILLIS, Date, Millis, OrgUnitCode, RecordStatus, ReportRow, ReviewState,
};
use rust_xlsxwriter::{DocProperties, Format, Workbook, Worksheet, XlsxError};

/// The names to show instead of codes and ids. A code or id missing from a map is shown
/// as it is, so an export never drops a row because a name is unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportNames {
    /// Village names by org unit code.
    pub villages: HashMap<OrgUnitCode, String>,
    /// What to call each worker (a display name or the username) by account id.
    pub workers: HashMap<AccountId, String>,
    /// Children's and elders' names by their document id.
    pub subjects: HashMap<String, String>,
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the CSV export could not be written: {0}")]
    Csv(#[from] csv::Error),
    #[error("the CSV export could not be finished: {0}")]
    Io(#[from] std::io::Error),
    #[error("the XLSX export could not be written: {0}")]
    Xlsx(#[from] XlsxError),
}

/// The worksheet (and CSV file) of home visits.
pub const VISITS_SHEET: &str = "家庭走访";
/// The worksheet (and CSV file) of service logs.
pub const SERVICE_LOGS_SHEET: &str = "服务记录";

/// Excel recognises UTF-8 only with a byte order mark; without it Chinese text comes out
/// garbled on the Chinese-locale Windows machines townships use.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One exported value.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

/// A column: its header and its width in Excel's character units (a Chinese character
/// takes about two).
struct Column {
    header: &'static str,
    width: f64,
}

const fn column(header: &'static str, width: f64) -> Column {
    Column { header, width }
}

const VISIT_COLUMNS: [Column; 11] = [
    column("村(居)", 12.0),
    column("儿童", 10.0),
    column("走访日期", 12.0),
    column("走访人", 14.0),
    column("发现的需求", 30.0),
    column("采取的措施", 40.0),
    column("关注事项", 44.0),
    column("下次走访", 12.0),
    column("审核状态", 10.0),
    column("审核意见", 30.0),
    column("记录编号", 32.0),
];

const SERVICE_LOG_COLUMNS: [Column; 12] = [
    column("村(居)", 12.0),
    column("服务对象", 10.0),
    column("服务人员", 14.0),
    column("服务日期", 12.0),
    column("签到", 8.0),
    column("签退", 17.0),
    column("时长(分钟)", 11.0),
    column("时长(小时)", 11.0),
    column("服务项目", 30.0),
    column("审核状态", 10.0),
    column("审核意见", 30.0),
    column("记录编号", 32.0),
];

/// Home visits as CSV (UTF-8 with a byte order mark), one row per visit in the given order.
pub fn visits_csv(rows: &[ReportRow], names: &ExportNames) -> Result<Vec<u8>, ExportError> {
    let cells: Vec<Vec<Cell>> = rows.iter().map(|row| visit_cells(row, names)).collect();
    csv_bytes(&VISIT_COLUMNS, &cells)
}

/// Service logs as CSV (UTF-8 with a byte order mark), one row per log in the given order.
pub fn service_logs_csv(rows: &[ReportRow], names: &ExportNames) -> Result<Vec<u8>, ExportError> {
    let cells: Vec<Vec<Cell>> = rows.iter().map(|row| log_cells(row, names)).collect();
    csv_bytes(&SERVICE_LOG_COLUMNS, &cells)
}

/// One workbook with the month's visits and service logs on two worksheets. `title` goes
/// into the document properties and the printed page header.
pub fn month_xlsx(
    title: &str,
    visits: &[ReportRow],
    logs: &[ReportRow],
    names: &ExportNames,
) -> Result<Vec<u8>, ExportError> {
    let mut workbook = Workbook::new();
    workbook.set_properties(&DocProperties::new().set_title(title));
    let visit_cells: Vec<Vec<Cell>> = visits.iter().map(|row| visit_cells(row, names)).collect();
    write_sheet(
        workbook.add_worksheet(),
        VISITS_SHEET,
        title,
        &VISIT_COLUMNS,
        &visit_cells,
    )?;
    let log_cells: Vec<Vec<Cell>> = logs.iter().map(|row| log_cells(row, names)).collect();
    write_sheet(
        workbook.add_worksheet(),
        SERVICE_LOGS_SHEET,
        title,
        &SERVICE_LOG_COLUMNS,
        &log_cells,
    )?;
    Ok(workbook.save_to_buffer()?)
}

fn visit_cells(row: &ReportRow, names: &ExportNames) -> Vec<Cell> {
    vec![
        Cell::Text(village_name(row, names)),
        Cell::Text(subject_name(row, names)),
        date_cell(row.day),
        Cell::Text(worker_name(row, names)),
        Cell::Text(row.needs_or_services.clone()),
        Cell::Text(row.actions.clone()),
        Cell::Text(row.concerns.clone()),
        date_cell(row.next_visit),
        Cell::Text(review_label(row).to_owned()),
        Cell::Text(row.review_comment.clone().unwrap_or_default()),
        Cell::Text(row.document.clone()),
    ]
}

fn log_cells(row: &ReportRow, names: &ExportNames) -> Vec<Cell> {
    let minutes = row.minutes.map_or(Cell::Empty, |m| Cell::Number(m as f64));
    let hours = row.minutes.map_or(Cell::Empty, |m| {
        // Two decimals: the precision hour totals are reported with.
        Cell::Number((m as f64 / 60.0 * 100.0).round() / 100.0)
    });
    vec![
        Cell::Text(village_name(row, names)),
        Cell::Text(subject_name(row, names)),
        Cell::Text(worker_name(row, names)),
        date_cell(row.day),
        time_cell(row.started_at, row.day),
        time_cell(row.ended_at, row.day),
        minutes,
        hours,
        Cell::Text(row.needs_or_services.clone()),
        Cell::Text(review_label(row).to_owned()),
        Cell::Text(row.review_comment.clone().unwrap_or_default()),
        Cell::Text(row.document.clone()),
    ]
}

fn village_name(row: &ReportRow, names: &ExportNames) -> String {
    names
        .villages
        .get(&row.org_unit)
        .cloned()
        .unwrap_or_else(|| row.org_unit.to_string())
}

fn worker_name(row: &ReportRow, names: &ExportNames) -> String {
    match &row.worker {
        Some(worker) => names
            .workers
            .get(worker)
            .cloned()
            .unwrap_or_else(|| worker.to_string()),
        None => String::new(),
    }
}

fn subject_name(row: &ReportRow, names: &ExportNames) -> String {
    match &row.subject {
        Some(subject) => names
            .subjects
            .get(subject.as_str())
            .cloned()
            .unwrap_or_else(|| subject.to_string()),
        None => String::new(),
    }
}

/// A draft has not been handed in, so "pending review" would mislead: it is shown as a
/// draft whatever its review says.
fn review_label(row: &ReportRow) -> &'static str {
    if row.record_status == Some(RecordStatus::Draft) {
        return "草稿";
    }
    match row.review_state {
        Some(ReviewState::Approved) => "已通过",
        Some(ReviewState::Returned) => "已退回",
        Some(ReviewState::Pending) | None => "待审核",
    }
}

fn date_cell(date: Option<Date>) -> Cell {
    date.map_or(Cell::Empty, |d| Cell::Text(d.to_string()))
}

/// An instant as China time `HH:MM`, prefixed with its date when it is not on `day` (a
/// check-out entered the next morning must not read as a time before the check-in).
fn time_cell(at: Option<Millis>, day: Option<Date>) -> Cell {
    let Some(at) = at else {
        return Cell::Empty;
    };
    let local = at.saturating_add(CHINA_OFFSET_MILLIS);
    let minute_of_day = local.rem_euclid(24 * 60 * 60_000) / 60_000;
    let clock = format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60);
    match Date::of_instant(at) {
        Some(date) if Some(date) != day => Cell::Text(format!("{date} {clock}")),
        _ => Cell::Text(clock),
    }
}

/// True for text a spreadsheet would read as a formula (or, for tab and carriage return,
/// as a cell break that shifts the next value into a formula position): OWASP's list for
/// CSV injection.
fn is_formula_like(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Text as it goes into a CSV cell: a leading `'` keeps Excel from evaluating it.
fn csv_text(text: &str) -> String {
    if is_formula_like(text) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn csv_bytes(columns: &[Column], rows: &[Vec<Cell>]) -> Result<Vec<u8>, ExportError> {
    let mut writer = csv::Writer::from_writer(UTF8_BOM.to_vec());
    writer.write_record(columns.iter().map(|c| c.header))?;
    for row in rows {
        writer.write_record(row.iter().map(|cell| match cell {
            Cell::Text(text) => csv_text(text),
            Cell::Number(number) => number.to_string(),
            Cell::Empty => String::new(),
        }))?;
    }
    writer
        .into_inner()
        .map_err(|e| ExportError::Io(e.into_error()))
}

fn write_sheet(
    sheet: &mut Worksheet,
    name: &str,
    title: &str,
    columns: &[Column],
    rows: &[Vec<Cell>],
) -> Result<(), ExportError> {
    sheet.set_name(name)?;
    // `&` starts a control code in page headers; a literal one is written twice.
    sheet.set_header(format!("&C{}", title.replace('&', "&&")));
    let bold = Format::new().set_bold();
    // Cells of the workbook are typed, so text is never evaluated; the quote prefix also
    // keeps Excel from turning such text into a formula when someone edits the cell.
    let quoted = Format::new().set_quote_prefix();
    for (col, column) in (0u16..).zip(columns) {
        sheet.write_string_with_format(0, col, column.header, &bold)?;
        sheet.set_column_width(col, column.width)?;
    }
    let mut last_row = 0;
    for (row_number, row) in (1u32..).zip(rows) {
        for (col, cell) in (0u16..).zip(row) {
            match cell {
                Cell::Text(text) if is_formula_like(text) => {
                    sheet.write_string_with_format(row_number, col, text, &quoted)?;
                }
                Cell::Text(text) => {
                    sheet.write_string(row_number, col, text)?;
                }
                Cell::Number(number) => {
                    sheet.write_number(row_number, col, *number)?;
                }
                Cell::Empty => {}
            }
        }
        last_row = row_number;
    }
    sheet.set_freeze_panes(1, 0)?;
    let last_col = u16::try_from(columns.len().saturating_sub(1)).unwrap_or(0);
    sheet.autofilter(0, 0, last_row, last_col)?;
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    use caresync_core::domain::{
        CheckStatus, Checklist, ChecklistItem, DurationOverride, HomeVisit, Record, Review,
        ServiceLog, ServiceType, SubjectId, report_row,
    };
    use caresync_core::validation::validate;

    use super::*;

    const T0: Millis = 1_714_536_000_000; // 2024-05-01T04:00:00Z, 12:00 in China
    const MINUTE: Millis = 60_000;
    const VILLAGE: &str = "370402102201";
    const OTHER_VILLAGE: &str = "370402102299";
    const CHILD: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
    const ELDER: &str = "3cAVsJLmGSkT5BFZAYnjrjbDKNVG";

    fn row(document: &str, record: impl Into<Record>) -> ReportRow {
        let record = record.into();
        validate(&record).unwrap();
        report_row(document, &record)
    }

    fn names() -> ExportNames {
        ExportNames {
            villages: [(OrgUnitCode::new(VILLAGE), "东王庄村".to_owned())].into(),
            workers: [
                (AccountId::new("dir-1"), "demo-director".to_owned()),
                (AccountId::new("worker-1"), "demo-worker".to_owned()),
            ]
            .into(),
            subjects: [
                (CHILD.to_owned(), "王小明".to_owned()),
                (ELDER.to_owned(), "李大爷".to_owned()),
            ]
            .into(),
        }
    }

    fn visits() -> Vec<ReportRow> {
        let mut returned = HomeVisit::new(
            OrgUnitCode::new(VILLAGE),
            AccountId::new("dir-1"),
            SubjectId::new(CHILD),
            T0,
        );
        returned.ended_at = Some(T0 + 40 * MINUTE);
        returned.checklist = Checklist::all_ok();
        returned.checklist.schooling = Some(ChecklistItem::with_note(
            CheckStatus::Concern,
            "本学期经常缺课",
        ));
        returned.needs = vec!["课业辅导".to_owned()];
        // A need written as a formula must reach the spreadsheet as text.
        returned.actions = vec!["=HYPERLINK(\"http://example.com\")".to_owned()];
        returned.next_visit_date = Date::parse("2024-06-01");
        returned.status = RecordStatus::Final;
        returned.review = Review::send_back(
            AccountId::new("rev-1"),
            T0 + 60 * MINUTE,
            "请写明缺课天数".to_owned(),
        );

        // A visit in a village, by a worker and of a child nobody named: ids are shown.
        let mut draft = HomeVisit::new(
            OrgUnitCode::new(OTHER_VILLAGE),
            AccountId::new("dir-9"),
            SubjectId::new("unknown-child"),
            T0 + 24 * 60 * MINUTE,
        );
        draft.checklist.health = Some(ChecklistItem::ok());
        vec![row("visit-1", returned), row("visit-2", draft)]
    }

    fn logs() -> Vec<ReportRow> {
        let mut approved = ServiceLog::new(
            OrgUnitCode::new(VILLAGE),
            AccountId::new("worker-1"),
            SubjectId::new(ELDER),
            T0 - 150 * MINUTE, // 09:30 in China
        );
        approved.check_out = Some(T0 - 60 * MINUTE);
        approved.services = vec![ServiceType::DailyCare, ServiceType::Laundry];
        approved.review = Review::approve(AccountId::new("rev-1"), T0, None);

        // Checked out the next morning; the hand-entered 45 minutes count.
        let mut overridden = ServiceLog::new(
            OrgUnitCode::new(VILLAGE),
            AccountId::new("worker-1"),
            SubjectId::new(ELDER),
            T0 + 5 * 60 * MINUTE, // 17:00 in China
        );
        overridden.check_out = Some(T0 + 19 * 60 * MINUTE); // 07:00 the next day
        overridden.services = vec![ServiceType::Other("-理发".to_owned())];
        overridden.duration_override = Some(DurationOverride {
            minutes: 45,
            reason: Some("忘记签退".to_owned()),
        });
        vec![row("log-1", approved), row("log-2", overridden)]
    }

    fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let body = bytes.strip_prefix(UTF8_BOM).expect("a byte order mark");
        let mut reader = csv::Reader::from_reader(body);
        let headers = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        (headers, rows)
    }

    fn headers(columns: &[Column]) -> Vec<String> {
        columns.iter().map(|c| c.header.to_owned()).collect()
    }

    #[test]
    fn visits_csv_has_chinese_headers_names_and_safe_cells() {
        let (header, rows) = parse_csv(&visits_csv(&visits(), &names()).unwrap());
        assert_eq!(
            header,
            [
                "村(居)",
                "儿童",
                "走访日期",
                "走访人",
                "发现的需求",
                "采取的措施",
                "关注事项",
                "下次走访",
                "审核状态",
                "审核意见",
                "记录编号"
            ]
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            [
                "东王庄村",
                "王小明",
                "2024-05-01",
                "demo-director",
                "课业辅导",
                "'=HYPERLINK(\"http://example.com\")",
                "就学情况：需关注（本学期经常缺课）",
                "2024-06-01",
                "已退回",
                "请写明缺课天数",
                "visit-1"
            ]
        );
        assert_eq!(
            rows[1],
            [
                OTHER_VILLAGE,
                "unknown-child",
                "2024-05-02",
                "dir-9",
                "",
                "",
                "",
                "",
                "草稿",
                "",
                "visit-2"
            ]
        );
    }

    #[test]
    fn service_logs_csv_has_times_minutes_and_hours() {
        let (header, rows) = parse_csv(&service_logs_csv(&logs(), &names()).unwrap());
        assert_eq!(header, headers(&SERVICE_LOG_COLUMNS));
        assert_eq!(
            header[..7],
            [
                "村(居)",
                "服务对象",
                "服务人员",
                "服务日期",
                "签到",
                "签退",
                "时长(分钟)"
            ]
        );
        assert_eq!(
            rows[0],
            [
                "东王庄村",
                "李大爷",
                "demo-worker",
                "2024-05-01",
                "09:30",
                "11:00",
                "90",
                "1.5",
                "日常护理、衣物清洗",
                "已通过",
                "",
                "log-1"
            ]
        );
        assert_eq!(rows[1][4], "17:00");
        assert_eq!(rows[1][5], "2024-05-02 07:00");
        assert_eq!(rows[1][6], "45");
        assert_eq!(rows[1][7], "0.75");
        assert_eq!(rows[1][8], "'-理发");
        assert_eq!(rows[1][9], "待审核");
    }

    #[test]
    fn an_export_without_rows_has_only_the_header() {
        let (header, rows) = parse_csv(&visits_csv(&[], &ExportNames::default()).unwrap());
        assert_eq!(header, headers(&VISIT_COLUMNS));
        assert!(rows.is_empty());
    }

    #[test]
    fn the_workbook_holds_both_sheets_with_typed_cells() {
        let bytes = month_xlsx("2024-05 台账 & 汇总", &visits(), &logs(), &names()).unwrap();
        let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        assert_eq!(workbook.sheet_names(), [VISITS_SHEET, SERVICE_LOGS_SHEET]);

        let sheet = workbook.worksheet_range(VISITS_SHEET).unwrap();
        let rows: Vec<&[Data]> = sheet.rows().collect();
        assert_eq!(rows.len(), 3);
        let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
        assert_eq!(header, headers(&VISIT_COLUMNS));
        assert_eq!(rows[1][0], Data::String("东王庄村".to_owned()));
        assert_eq!(rows[1][2], Data::String("2024-05-01".to_owned()));
        // Typed string cells are never formulas, so the text is kept as written.
        assert_eq!(
            rows[1][5],
            Data::String("=HYPERLINK(\"http://example.com\")".to_owned())
        );
        assert_eq!(rows[1][8], Data::String("已退回".to_owned()));
        assert_eq!(rows[2][10], Data::String("visit-2".to_owned()));

        let sheet = workbook.worksheet_range(SERVICE_LOGS_SHEET).unwrap();
        let rows: Vec<&[Data]> = sheet.rows().collect();
        assert_eq!(rows.len(), 3);
        let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
        assert_eq!(header, headers(&SERVICE_LOG_COLUMNS));
        assert_eq!(rows[1][1], Data::String("李大爷".to_owned()));
        assert_eq!(rows[1][3], Data::String("2024-05-01".to_owned()));
        assert_eq!(rows[1][6], Data::Float(90.0));
        assert_eq!(rows[1][7], Data::Float(1.5));
        assert_eq!(rows[2][6], Data::Float(45.0));
        assert_eq!(rows[2][11], Data::String("log-2".to_owned()));
    }

    #[test]
    fn the_demo_prefecture_exports() {
        let data = crate::demo::demo_data(Date::new(2025, 6, 15).unwrap()).unwrap();
        let rows: Vec<ReportRow> = data.documents.iter().map(|d| d.report.clone()).collect();
        let visits: Vec<ReportRow> = rows
            .iter()
            .filter(|r| r.kind == caresync_core::domain::DocumentKind::HomeVisit)
            .cloned()
            .collect();
        let logs: Vec<ReportRow> = rows
            .iter()
            .filter(|r| r.kind == caresync_core::domain::DocumentKind::ServiceLog)
            .cloned()
            .collect();
        let names = ExportNames {
            villages: data
                .units
                .iter()
                .map(|u| (u.code.clone(), u.name.clone()))
                .collect(),
            workers: data
                .accounts
                .iter()
                .map(|a| (a.account.id.clone(), a.account.username.clone()))
                .collect(),
            subjects: rows
                .iter()
                .filter(|r| r.kind.is_subject())
                .map(|r| (r.document.clone(), r.title.clone()))
                .collect(),
        };
        let (_, csv_rows) = parse_csv(&visits_csv(&visits, &names).unwrap());
        assert_eq!(csv_rows.len(), visits.len());
        // Every visit's child and village were named.
        assert!(csv_rows.iter().all(|r| !r[0].starts_with("3704")));
        assert!(
            csv_rows
                .iter()
                .all(|r| names.subjects.values().any(|n| *n == r[1]))
        );
        let bytes = month_xlsx("demo", &visits, &logs, &names).unwrap();
        let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        let sheet = workbook.worksheet_range(SERVICE_LOGS_SHEET).unwrap();
        assert_eq!(sheet.rows().count(), logs.len() + 1);
    }
}
