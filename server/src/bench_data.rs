//! A generated prefecture for the benchmark's workload (f) (design §4: "prefecture history
//! (≈1 million documents) in one SQLite file: relay start ≤ 5 s; a township's monthly
//! report ≤ 200 ms").
//!
//! The prefecture has districts of ten townships of twenty villages. Each village keeps
//! about two years of history ending on [`history_end`]: a ledger of children in
//! difficulty with their home visits (monthly for red risk, less often as the risk falls),
//! a few elders registered by the bureau, and the service logs of the township's care
//! workers, who serve each elder every few days to every month as their care needs ask.
//! Visits and logs are reviewed by the township reviewer, some are sent back and answered.
//! About [`DOCUMENTS_PER_VILLAGE`] documents per village, so a million documents make some
//! two thousand villages, the size of a real prefecture.
//!
//! Documents are written as the demo's are (`demo.rs`): automerge documents whose changes
//! are made, one edit at a time, by the account that made each edit, so the access rules
//! accept every change; they are stored with their recorded metadata and report rows
//! through [`DocumentStore::write_batch`], as the relay stores what devices send.
//!
//! Everything is derived from a fixed seed and a fixed end date, per township, so a
//! generated file is the same whatever the number of threads and whenever it is made, and a
//! benchmark can keep it between runs (see [`GENERATOR_VERSION`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{Context, anyhow, bail};
use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use caresync_core::domain::{
    Account, AccountId, CHINA_OFFSET_MILLIS, CareNeedsLevel, CheckStatus, Checklist, ChecklistItem,
    Child, ChildCategory, Comment, Confirmation, ConfirmationMethod, Date, DurationOverride, Elder,
    Gender, Guardian, GuardianRelation, HomeVisit, Millis, OrgLevel, OrgUnit, OrgUnitCode, Record,
    RecordStatus, Referral, Review, Risk, RiskLevel, Role, ServiceLog, ServiceType, SubjectId,
    SubjectStatus, YearMonth, report_row,
};
use caresync_core::protocol::DocumentId;
use caresync_core::sync::StoredChange;
use caresync_core::validation::validate;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::auth::password::hash_password;
use crate::demo::{DemoDocument, DemoError, demo_actor};
use crate::store::{self, DocumentStore, WriteOp};

/// Changes whenever the generated data would differ, so that files kept by an earlier
/// version are not taken for this one's.
pub const GENERATOR_VERSION: u32 = 1;

/// The password of every generated account. Generated prefectures are for benchmarks and
/// tests only.
pub const BENCH_PASSWORD: &str = "bench-password";

/// About how many documents one village holds; [`Shape::for_documents`] sizes the
/// prefecture with it. Measured on the generator's output (children, visits, elders, logs).
pub const DOCUMENTS_PER_VILLAGE: u64 = 500;

/// The prefecture's code (Zaozhuang).
pub const PREFECTURE: &str = "370400";

/// The bureau account, which registers the elders.
const ADMIN: &str = "acct-bench-admin";

const SEED: u64 = 0x0CA2_E5C0_BE4C_0370;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// How far back visits and service logs go.
const HISTORY_DAYS: i64 = 730;
/// Records younger than this are mostly not reviewed yet.
const REVIEW_DELAY_DAYS_MAX: i64 = 7;
/// Elders one care worker serves.
const ELDERS_PER_WORKER: usize = 20;
/// Documents per write transaction: large enough that fsyncs do not matter, small enough
/// that the writer's memory stays small.
const WRITE_BATCH_DOCUMENTS: usize = 5_000;
/// SQLite's page cache while generating (in KiB, as `PRAGMA cache_size` takes negative
/// numbers): document ids are random, so inserts land all over the tables and a small
/// cache would read most pages back from disk for every batch.
const GENERATION_CACHE_KIB: i64 = 512 * 1024;

/// The last day of the generated history; the day after is "today" for everything in it.
pub fn history_end() -> Date {
    // A fixed day, so that a generated file does not depend on when it was made.
    Date::new(2025, 6, 30).unwrap_or_else(unreachable_date)
}

/// The month of the township reports the benchmark asks for: the last of the history.
pub fn report_month() -> YearMonth {
    let end = history_end();
    YearMonth::new(end.year(), end.month()).unwrap_or_else(unreachable_month)
}

// `Date::new` refuses only impossible days; 2025-06-30 is not one. These keep the lints'
// ban on `expect` without hiding a failure.
#[allow(clippy::panic)]
fn unreachable_date() -> Date {
    panic!("2025-06-30 is a valid date")
}

#[allow(clippy::panic)]
fn unreachable_month() -> YearMonth {
    panic!("2025-06 is a valid month")
}

/// How big the prefecture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub districts: u32,
    pub townships_per_district: u32,
    pub villages_per_township: u32,
}

impl Shape {
    /// A prefecture of about `documents` documents: ten townships of twenty villages per
    /// district once there are enough villages, else one district with a few smaller
    /// townships (so that a quick run still has more than one township).
    pub fn for_documents(documents: u64) -> Shape {
        let villages = documents.div_ceil(DOCUMENTS_PER_VILLAGE).max(1);
        let villages = u32::try_from(villages).unwrap_or(u32::MAX);
        if villages >= 200 {
            Shape {
                districts: villages.div_ceil(200),
                townships_per_district: 10,
                villages_per_township: 20,
            }
        } else {
            let per_township = (villages / 2).clamp(1, 20);
            Shape {
                districts: 1,
                townships_per_district: villages.div_ceil(per_township),
                villages_per_township: per_township,
            }
        }
    }

    pub fn townships(&self) -> u32 {
        self.districts.saturating_mul(self.townships_per_district)
    }

    pub fn villages(&self) -> u32 {
        self.townships().saturating_mul(self.villages_per_township)
    }

    /// The code of the `index`th township (0-based, district by district).
    pub fn township_code(&self, index: u32) -> OrgUnitCode {
        let per = self.townships_per_district.max(1);
        township_code(index / per, index % per)
    }

    /// The code of the `village`th village of the `township`th township (both 0-based).
    pub fn village_code(&self, township: u32, village: u32) -> OrgUnitCode {
        village_code(&self.township_code(township), village)
    }

    /// Every org unit, parents first.
    pub fn units(&self) -> Vec<OrgUnit> {
        let unit = |code: String, name: String, level, parent: Option<&str>| OrgUnit {
            code: OrgUnitCode::new(code),
            name,
            level,
            parent: parent.map(OrgUnitCode::new),
        };
        let mut units = vec![unit(
            PREFECTURE.to_owned(),
            "枣庄市".to_owned(),
            OrgLevel::Prefecture,
            None,
        )];
        for d in 0..self.districts {
            let district = district_code(d);
            units.push(unit(
                district.clone(),
                format!("{}区", place_name(d)),
                OrgLevel::District,
                Some(PREFECTURE),
            ));
            for t in 0..self.townships_per_district {
                let township = township_code(d, t);
                units.push(unit(
                    township.as_str().to_owned(),
                    format!("{}镇", place_name(d * 31 + t)),
                    OrgLevel::Township,
                    Some(&district),
                ));
                for v in 0..self.villages_per_township {
                    units.push(unit(
                        village_code(&township, v).as_str().to_owned(),
                        format!("{}村", place_name(d * 997 + t * 37 + v)),
                        OrgLevel::Village,
                        Some(township.as_str()),
                    ));
                }
            }
        }
        units
    }
}

fn district_code(district: u32) -> String {
    format!("3704{:02}", district + 1)
}

fn township_code(district: u32, township: u32) -> OrgUnitCode {
    OrgUnitCode::new(format!("{}{:03}", district_code(district), township + 101))
}

fn village_code(township: &OrgUnitCode, village: u32) -> OrgUnitCode {
    OrgUnitCode::new(format!("{township}{:03}", village + 201))
}

/// A two-character place name, different for neighbouring indices.
fn place_name(index: u32) -> String {
    const FIRST: [&str; 16] = [
        "东", "西", "南", "北", "前", "后", "大", "小", "上", "下", "新", "老", "王", "张", "李",
        "马",
    ];
    const SECOND: [&str; 12] = [
        "庄", "楼", "集", "屯", "河", "洼", "店", "营", "岭", "桥", "湖", "山",
    ];
    let i = index as usize;
    let first = FIRST.get(i % FIRST.len()).copied().unwrap_or("东");
    let second = SECOND
        .get((i / FIRST.len()) % SECOND.len())
        .copied()
        .unwrap_or("庄");
    format!("{first}{second}")
}

/// The username of a village's child director.
pub fn director_username(village: &OrgUnitCode) -> String {
    format!("bench-director-{village}")
}

/// The username of a township's reviewer.
pub fn reviewer_username(township: &OrgUnitCode) -> String {
    format!("bench-reviewer-{township}")
}

fn account_id(username: &str) -> AccountId {
    AccountId::new(format!("acct-{username}"))
}

/// What [`generate`] stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub documents: u64,
    pub changes: u64,
    pub accounts: u64,
    pub units: u64,
}

/// Generates the prefecture of `shape` into the empty database at `path`, with `threads`
/// threads making documents while the calling thread stores them. `progress` is told the
/// number of documents stored after each transaction.
pub fn generate(
    path: &Path,
    shape: Shape,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Generated> {
    let conn = store::open_connection(path)?;
    let has_units: bool = conn
        .prepare("SELECT 1 FROM org_units LIMIT 1")?
        .exists([])?;
    if has_units || !store::list_accounts(&conn)?.is_empty() {
        bail!("{} is not an empty database", path.display());
    }
    drop(conn);

    let mut documents = DocumentStore::open(path)?;
    documents
        .connection()
        .pragma_update(None, "cache_size", -GENERATION_CACHE_KIB)?;
    let mut generated = Generated::default();
    let townships = usize::try_from(shape.townships()).unwrap_or(usize::MAX);
    let next = AtomicUsize::new(0);
    let mut workers: BTreeMap<usize, Vec<Account>> = BTreeMap::new();

    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Bounded, so that makers running ahead of the writer wait instead of piling up
        // documents in memory.
        let (sender, receiver) = mpsc::sync_channel(threads.max(1) * 2);
        for _ in 0..threads.max(1) {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= townships {
                        break;
                    }
                    let made = make_township(&shape, index);
                    if sender.send((index, made)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);

        // Stored in township order whatever order the threads finish in, so that sequence
        // numbers, and so the whole file, do not depend on the threads.
        let mut waiting: BTreeMap<usize, Township> = BTreeMap::new();
        let mut stored_up_to = 0;
        for (index, made) in receiver {
            let township = made.with_context(|| format!("cannot make township {index}"))?;
            waiting.insert(index, township);
            while let Some(township) = waiting.remove(&stored_up_to) {
                for chunk in township.documents.chunks(WRITE_BATCH_DOCUMENTS) {
                    let ops: Vec<WriteOp> = chunk
                        .iter()
                        .map(|document| WriteOp::PutChanges {
                            document: document.id,
                            meta: Some(document.meta.clone()),
                            changes: document.changes.clone(),
                            heads: document.heads.clone(),
                            report: Some(document.report.clone()),
                        })
                        .collect();
                    let summary = documents.write_batch(&ops)?;
                    generated.documents += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                    generated.changes += summary.changes_inserted;
                    progress(generated.documents);
                }
                workers.insert(stored_up_to, township.workers);
                stored_up_to += 1;
            }
        }
        if stored_up_to != townships {
            return Err(anyhow!(
                "only {stored_up_to} of {townships} townships were made"
            ));
        }
        Ok(())
    })?;
    drop(documents);

    let mut conn = store::open_connection(path)?;
    let tx = conn.transaction()?;
    let units = shape.units();
    for unit in &units {
        store::insert_org_unit(&tx, unit)?;
    }
    // One hash for every account: Argon2id takes a good fraction of a second by design,
    // and two thousand accounts with one password need no two different salts here.
    let hash = hash_password(BENCH_PASSWORD)?;
    let mut accounts = vec![
        Account::new(ADMIN, "bench-admin", Role::BureauAdmin)
            .with_org_units([OrgUnitCode::new(PREFECTURE)]),
    ];
    for index in 0..shape.townships() {
        let township = shape.township_code(index);
        let reviewer = reviewer_username(&township);
        accounts.push(
            Account::new(account_id(&reviewer).0, reviewer, Role::TownshipReviewer)
                .with_org_units([township.clone()]),
        );
        for village in 0..shape.villages_per_township {
            let village = village_code(&township, village);
            let director = director_username(&village);
            accounts.push(
                Account::new(
                    account_id(&director).0,
                    director,
                    Role::VillageChildDirector,
                )
                .with_org_units([village]),
            );
        }
    }
    accounts.extend(workers.into_values().flatten());
    let now = i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX);
    for account in &accounts {
        store::insert_account(&tx, account, &hash, now)?;
    }
    tx.commit()?;
    // The benchmark copies and reopens the file; a long write-ahead log would be replayed
    // by the first relay that opens it and be counted in its start time.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    generated.accounts = u64::try_from(accounts.len()).unwrap_or(u64::MAX);
    generated.units = u64::try_from(units.len()).unwrap_or(u64::MAX);
    Ok(generated)
}

/// One township's documents and its care workers' accounts (with their elders).
#[derive(Debug)]
pub struct Township {
    pub documents: Vec<DemoDocument>,
    pub workers: Vec<Account>,
}

/// Makes the `index`th township of `shape`: the same every time.
pub fn make_township(shape: &Shape, index: usize) -> Result<Township, DemoError> {
    let index_u32 = u32::try_from(index).unwrap_or(u32::MAX);
    let township = shape.township_code(index_u32);
    let today = history_end()
        .days_since_epoch()
        .checked_add(1)
        .and_then(Date::from_days_since_epoch)
        .ok_or(DemoError::DateOutOfRange(history_end()))?;
    let mut maker = Maker {
        rng: SmallRng::seed_from_u64(SEED ^ (u64::from(index_u32) << 20)),
        today,
        today_days: today.days_since_epoch(),
        reviewer: account_id(&reviewer_username(&township)),
        documents: Vec::new(),
    };
    let mut elders = Vec::new();
    for v in 0..shape.villages_per_township {
        let village = village_code(&township, v);
        let director = account_id(&director_username(&village));
        maker.village_children(&village, &director)?;
        elders.extend(maker.village_elders(&village)?);
    }
    let mut workers = Vec::new();
    for (n, served) in elders.chunks(ELDERS_PER_WORKER).enumerate() {
        let username = format!("bench-worker-{township}-{}", n + 1);
        let id = account_id(&username);
        maker.service_logs(&id, served)?;
        workers.push(
            Account::new(id.0, username, Role::CareWorker)
                .with_org_units([township.clone()])
                .with_assigned_elders(served.iter().map(|elder| elder.id.clone())),
        );
    }
    Ok(Township {
        documents: maker.documents,
        workers,
    })
}

// ---------------------------------------------------------------------------------------
// Word lists: fewer than the demo's, enough that records differ.

const SURNAMES: &[&str] = &[
    "王", "张", "李", "刘", "孙", "赵", "陈", "杨", "徐", "马", "高", "韩", "宋", "褚",
];
const GIVEN_NAMES: &[&str] = &[
    "浩然", "宇轩", "子涵", "梓萱", "欣怡", "俊杰", "雨桐", "思远", "建国", "秀梅", "春燕", "志刚",
    "桂兰", "玉山",
];
const CONCERNS: [(&str, &str, &str); 5] = [
    (
        "监护人常外出打零工，儿童放学后无人看管",
        "落实有效监护",
        "镇妇联",
    ),
    ("本学期经常缺课", "课业辅导", "镇中心小学"),
    ("营养不良，体重偏低", "就医及康复支持", "镇卫生院"),
    ("家中电线老化，存在隐患", "消除居家安全隐患", "镇派出所"),
    ("冬季衣被不足", "冬衣被褥及生活物资", "镇民政办"),
];
const RETURN_COMMENTS: &[&str] = &["请写明缺课天数及原因", "请补充下次走访计划"];
const REPLIES: &[&str] = &["已补充，请再次审核", "已核实，时长无误"];
const LOG_NOTES: &[&str] = &[
    "老人血压偏高，已提醒家属按时服药",
    "帮助打扫卫生并清洗衣物",
    "陪老人聊天，情绪稳定",
];

// ---------------------------------------------------------------------------------------
// The maker.

/// One edit of a document: the record after it, who made it and when.
struct Step {
    author: AccountId,
    at: Millis,
    record: Record,
}

struct Maker {
    rng: SmallRng,
    today: Date,
    today_days: i64,
    reviewer: AccountId,
    documents: Vec<DemoDocument>,
}

struct ElderProfile {
    id: SubjectId,
    village: OrgUnitCode,
    care_needs: CareNeedsLevel,
    /// Days before today the elder was registered; service starts after it.
    registered: i64,
}

impl Maker {
    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items.choose(&mut self.rng).copied().unwrap_or_default()
    }

    fn new_id(&mut self) -> DocumentId {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes);
        DocumentId::random_from(bytes)
    }

    fn name(&mut self) -> String {
        format!("{}{}", self.pick(SURNAMES), self.pick(GIVEN_NAMES))
    }

    fn gender(&mut self) -> Gender {
        if self.rng.random_bool(0.5) {
            Gender::Female
        } else {
            Gender::Male
        }
    }

    fn date(&self, days_ago: i64) -> Result<Date, DemoError> {
        Date::from_days_since_epoch(self.today_days - days_ago)
            .ok_or(DemoError::DateOutOfRange(self.today))
    }

    /// The instant `days_ago` days before today at `minutes` past China midnight.
    fn instant(&self, days_ago: i64, minutes: i64) -> Millis {
        (self.today_days - days_ago) * DAY - CHINA_OFFSET_MILLIS + minutes * MINUTE
    }

    fn instant_between(&mut self, days_ago: i64, from_hour: i64, to_hour: i64) -> Millis {
        let minutes = self.rng.random_range(from_hour * 60..to_hour * 60);
        self.instant(days_ago, minutes)
    }

    fn birth(&mut self, ages: std::ops::RangeInclusive<i64>) -> Result<YearMonth, DemoError> {
        let age = self.rng.random_range(ages);
        let month = self.rng.random_range(1..=12);
        u16::try_from(i64::from(self.today.year()) - age)
            .ok()
            .and_then(|year| YearMonth::new(year, month))
            .ok_or(DemoError::DateOutOfRange(self.today))
    }

    /// Writes `steps` into one automerge document, each by its author, and keeps it.
    fn store(&mut self, id: DocumentId, steps: Vec<Step>) -> Result<(), DemoError> {
        let mut doc = AutoCommit::new();
        let mut last = None;
        for step in steps {
            doc.set_actor(demo_actor(&step.author));
            step.record.save(&mut doc)?;
            // automerge keeps commit times in whole seconds.
            doc.commit_with(CommitOptions::default().with_time(step.at.div_euclid(1000)));
            last = Some(step.record);
        }
        let Some(record) = last else {
            return Ok(());
        };
        let document = id.to_string();
        validate(&record).map_err(|errors| DemoError::Invalid {
            document: document.clone(),
            detail: errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message_en()))
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let changes = doc
            .get_changes(&[])
            .iter()
            .map(|change| StoredChange {
                hash: change.hash(),
                bytes: change.raw_bytes().to_vec(),
            })
            .collect();
        self.documents.push(DemoDocument {
            id,
            meta: record.meta().with_document_id(&document),
            changes,
            heads: doc.get_heads(),
            report: report_row(&document, &record),
        });
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Children and home visits.

    fn village_children(
        &mut self,
        village: &OrgUnitCode,
        director: &AccountId,
    ) -> Result<(), DemoError> {
        let count = self.rng.random_range(14..=22);
        for _ in 0..count {
            let risk = match self.rng.random_range(0..100) {
                0..10 => RiskLevel::Red,
                10..35 => RiskLevel::Yellow,
                35..65 => RiskLevel::Blue,
                _ => RiskLevel::Green,
            };
            let interval: i64 = match risk {
                RiskLevel::Red => 30,
                RiskLevel::Yellow => 60,
                RiskLevel::Blue => 90,
                RiskLevel::Green => 120,
            };
            // Most children were registered before the history starts; some during it.
            let registered = if self.rng.random_bool(0.3) {
                self.rng.random_range(15..HISTORY_DAYS)
            } else {
                self.rng.random_range(HISTORY_DAYS..=HISTORY_DAYS + 700)
            };
            let closed = (registered > 200 && self.rng.random_bool(0.08)).then(|| {
                self.rng
                    .random_range(20..registered.min(HISTORY_DAYS) - 100)
            });
            let last = match closed {
                Some(closed_ago) => closed_ago + self.rng.random_range(3..=20),
                // Some children are overdue for their next visit.
                None if self.rng.random_bool(0.12) => interval + self.rng.random_range(5..=40),
                None => self.rng.random_range(1..interval),
            };
            let mut visit_days = Vec::new();
            let mut day = last;
            while day <= HISTORY_DAYS && day < registered {
                visit_days.push(day);
                day += interval + self.rng.random_range(-5..=5);
            }

            let id = self.new_id();
            let mut child = Child::new(
                village.clone(),
                self.name(),
                self.birth(2..=16)?,
                self.gender(),
            );
            child.categories.push(match self.rng.random_range(0..100) {
                0..10 => ChildCategory::Orphan,
                10..25 => ChildCategory::DeFactoUnattended,
                25..50 => ChildCategory::PoorFamily,
                50..60 => ChildCategory::SeverelyDisabled,
                _ => ChildCategory::LeftBehind,
            });
            let assessed = visit_days.first().copied().unwrap_or(registered);
            child.risk = Some(Risk {
                level: risk,
                date: self.date(assessed)?,
                reason: matches!(risk, RiskLevel::Red | RiskLevel::Yellow)
                    .then(|| "父母均在外务工，祖母年迈多病".to_owned()),
            });
            let guardian = self.name();
            child.guardians.push(Guardian {
                name: guardian,
                relation: GuardianRelation::Grandparent,
                phone: Some(format!(
                    "139{:08}",
                    self.rng.random_range(0..100_000_000u32)
                )),
            });
            let mut steps = vec![Step {
                author: director.clone(),
                at: self.instant_between(registered, 8, 17),
                record: Record::Child(child.clone()),
            }];
            if let Some(closed_ago) = closed {
                let at = self.instant_between(closed_ago, 8, 17);
                child.status = SubjectStatus::Closed;
                child.comments.push(Comment::new(
                    director.clone(),
                    at,
                    "家庭经济状况好转，退出困境儿童保障",
                ));
                steps.push(Step {
                    author: director.clone(),
                    at,
                    record: Record::Child(child),
                });
            }
            self.store(id, steps)?;
            let child_id = SubjectId::new(id.to_string());
            for (position, days_ago) in visit_days.iter().enumerate() {
                self.visit(
                    village,
                    director,
                    &child_id,
                    risk,
                    interval,
                    *days_ago,
                    position == 0,
                )?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        village: &OrgUnitCode,
        director: &AccountId,
        child_id: &SubjectId,
        risk: RiskLevel,
        interval: i64,
        days_ago: i64,
        latest: bool,
    ) -> Result<(), DemoError> {
        let id = self.new_id();
        let started = self.instant_between(days_ago, 8, 17);
        let mut visit =
            HomeVisit::new(village.clone(), director.clone(), child_id.clone(), started);
        let mut steps = vec![Step {
            author: director.clone(),
            at: started,
            record: Record::HomeVisit(visit.clone()),
        }];
        if latest && days_ago <= 3 && self.rng.random_bool(0.3) {
            // Not finished yet: what was looked at so far is saved.
            visit.checklist.guardianship = Some(ChecklistItem::ok());
            steps.push(Step {
                author: director.clone(),
                at: started + 15 * MINUTE,
                record: Record::HomeVisit(visit),
            });
            return self.store(id, steps);
        }

        let concern = match risk {
            RiskLevel::Red => 0.35,
            RiskLevel::Yellow => 0.2,
            RiskLevel::Blue => 0.08,
            RiskLevel::Green => 0.03,
        };
        let mut items = [(); 5].map(|()| Some(ChecklistItem::ok()));
        for (item, (note, need, agency)) in items.iter_mut().zip(CONCERNS) {
            if !self.rng.random_bool(concern) {
                continue;
            }
            let serious = risk == RiskLevel::Red && self.rng.random_bool(0.3);
            let status = if serious {
                CheckStatus::Serious
            } else {
                CheckStatus::Concern
            };
            *item = Some(ChecklistItem::with_note(status, note));
            visit.needs.push(need.to_owned());
            visit.actions.push("与监护人谈话，明确监护责任".to_owned());
            if serious {
                visit.referrals.push(Referral {
                    to: agency.to_owned(),
                    reason: Some(note.to_owned()),
                });
            }
        }
        let [guardianship, schooling, health, safety, living] = items;
        visit.checklist = Checklist {
            guardianship,
            schooling,
            health,
            safety,
            living,
        };
        let ended = started + self.rng.random_range(20..=90) * MINUTE;
        visit.ended_at = Some(ended);
        visit.next_visit_date = Some(self.date(days_ago - interval)?);
        visit.status = RecordStatus::Final;
        steps.push(Step {
            author: director.clone(),
            at: ended,
            record: Record::HomeVisit(visit.clone()),
        });

        let review_ago = days_ago - self.rng.random_range(1..=REVIEW_DELAY_DAYS_MAX);
        let roll = self.rng.random_range(0..100);
        if review_ago >= 1 && roll < 90 {
            let reviewer = self.reviewer.clone();
            let at = self.instant_between(review_ago, 9, 17).max(ended + HOUR);
            if roll < 10 {
                let comment = self.pick(RETURN_COMMENTS).to_owned();
                visit.review = Review::send_back(reviewer.clone(), at, comment);
                steps.push(Step {
                    author: reviewer,
                    at,
                    record: Record::HomeVisit(visit.clone()),
                });
                if review_ago >= 2 && self.rng.random_bool(0.6) {
                    let reply_at = at + self.rng.random_range(1..=6) * HOUR;
                    let text = self.pick(REPLIES);
                    visit
                        .comments
                        .push(Comment::new(director.clone(), reply_at, text));
                    steps.push(Step {
                        author: director.clone(),
                        at: reply_at,
                        record: Record::HomeVisit(visit),
                    });
                }
            } else {
                visit.review = Review::approve(reviewer.clone(), at, None);
                steps.push(Step {
                    author: reviewer,
                    at,
                    record: Record::HomeVisit(visit),
                });
            }
        }
        self.store(id, steps)
    }

    // -----------------------------------------------------------------------------------
    // Elders and service logs.

    fn village_elders(&mut self, village: &OrgUnitCode) -> Result<Vec<ElderProfile>, DemoError> {
        let count = self.rng.random_range(2..=4);
        let mut elders = Vec::new();
        for _ in 0..count {
            let care_needs = match self.rng.random_range(0..10) {
                0 => CareNeedsLevel::Independent,
                1..3 => CareNeedsLevel::Mild,
                3..6 => CareNeedsLevel::Moderate,
                6..8 => CareNeedsLevel::Severe,
                _ => CareNeedsLevel::Total,
            };
            let elder = Elder::new(
                village.clone(),
                self.name(),
                self.birth(68..=92)?,
                self.gender(),
                care_needs,
            );
            let id = self.new_id();
            let registered = self.rng.random_range(30..=HISTORY_DAYS + 700);
            let at = self.instant_between(registered, 9, 17);
            self.store(
                id,
                vec![Step {
                    author: AccountId::new(ADMIN),
                    at,
                    record: Record::Elder(elder),
                }],
            )?;
            elders.push(ElderProfile {
                id: SubjectId::new(id.to_string()),
                village: village.clone(),
                care_needs,
                registered,
            });
        }
        Ok(elders)
    }

    /// One worker's rounds, day by day, so that no two of their services overlap.
    fn service_logs(
        &mut self,
        worker: &AccountId,
        elders: &[ElderProfile],
    ) -> Result<(), DemoError> {
        let mut rounds: BTreeMap<i64, Vec<&ElderProfile>> = BTreeMap::new();
        for elder in elders {
            let every = match elder.care_needs {
                CareNeedsLevel::Total => 3,
                CareNeedsLevel::Severe => 4,
                CareNeedsLevel::Moderate => 7,
                CareNeedsLevel::Mild => 14,
                CareNeedsLevel::Independent => 30,
            };
            let mut day = self.rng.random_range(1..=every);
            while day <= HISTORY_DAYS && day < elder.registered {
                rounds.entry(day).or_default().push(elder);
                day += every + self.rng.random_range(-1..=1);
            }
        }
        // Oldest day first, so that logs are made in the order of their days.
        for (days_ago, served) in rounds.into_iter().rev() {
            let mut minute = 8 * 60 + self.rng.random_range(0..60);
            for elder in served {
                // A day too full is cut short: the rest are served another day.
                if minute > 19 * 60 {
                    break;
                }
                let duration = self.rng.random_range(30..=90);
                self.service_log(worker, days_ago, minute, duration, elder)?;
                minute += duration + self.rng.random_range(10..=30);
            }
        }
        Ok(())
    }

    fn service_log(
        &mut self,
        worker: &AccountId,
        days_ago: i64,
        minute: i64,
        duration: i64,
        elder: &ElderProfile,
    ) -> Result<(), DemoError> {
        let id = self.new_id();
        let check_in = self.instant(days_ago, minute);
        let mut log = ServiceLog::new(
            elder.village.clone(),
            worker.clone(),
            elder.id.clone(),
            check_in,
        );
        let mut steps = vec![Step {
            author: worker.clone(),
            at: check_in,
            record: Record::ServiceLog(log.clone()),
        }];
        let mut services = vec![if matches!(
            elder.care_needs,
            CareNeedsLevel::Independent | CareNeedsLevel::Mild
        ) {
            ServiceType::Visiting
        } else {
            ServiceType::DailyCare
        }];
        for service in [ServiceType::EmotionalComfort, ServiceType::Laundry] {
            if self.rng.random_bool(0.3) {
                services.push(service);
            }
        }
        log.services = services;
        let served_until = check_in + duration * MINUTE;
        if days_ago >= 2 && self.rng.random_bool(0.03) {
            // Checked out the next morning; the duration was entered by hand.
            log.check_out = Some(check_in + self.rng.random_range(13..=15) * HOUR);
            log.duration_override = Some(DurationOverride {
                minutes: duration,
                reason: Some("忘记签退，按实际服务时长填写".to_owned()),
            });
        } else {
            log.check_out = Some(served_until);
        }
        if self.rng.random_bool(0.8) {
            log.confirmation = Some(Confirmation {
                confirmed: true,
                at: served_until,
                method: if self.rng.random_bool(0.5) {
                    ConfirmationMethod::Signature
                } else {
                    ConfirmationMethod::Thumbprint
                },
            });
        }
        if self.rng.random_bool(0.4) {
            log.note = Some(self.pick(LOG_NOTES).to_owned());
        }
        let checked_out = log.check_out.unwrap_or(served_until);
        steps.push(Step {
            author: worker.clone(),
            at: checked_out,
            record: Record::ServiceLog(log.clone()),
        });

        let review_ago = days_ago - self.rng.random_range(1..=REVIEW_DELAY_DAYS_MAX);
        let roll = self.rng.random_range(0..100);
        if review_ago >= 1 && roll < 80 {
            let reviewer = self.reviewer.clone();
            let at = self
                .instant_between(review_ago, 9, 17)
                .max(checked_out + HOUR);
            if roll < 5 {
                let comment = self.pick(RETURN_COMMENTS).to_owned();
                log.review = Review::send_back(reviewer.clone(), at, comment);
                steps.push(Step {
                    author: reviewer,
                    at,
                    record: Record::ServiceLog(log.clone()),
                });
                if review_ago >= 2 && self.rng.random_bool(0.5) {
                    let reply_at = at + self.rng.random_range(1..=6) * HOUR;
                    let text = self.pick(REPLIES);
                    log.comments
                        .push(Comment::new(worker.clone(), reply_at, text));
                    steps.push(Step {
                        author: worker.clone(),
                        at: reply_at,
                        record: Record::ServiceLog(log),
                    });
                }
            } else {
                log.review = Review::approve(reviewer.clone(), at, None);
                steps.push(Step {
                    author: reviewer,
                    at,
                    record: Record::ServiceLog(log),
                });
            }
        }
        self.store(id, steps)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use automerge::{ActorId, Automerge, Change};
    use caresync_core::access::{Decision, decide_change};
    use caresync_core::domain::{DocumentKind, OrgTree};

    use super::*;
    use crate::store::test_support::temp_db;

    fn small() -> Shape {
        Shape {
            districts: 1,
            townships_per_district: 2,
            villages_per_township: 2,
        }
    }

    fn changes(document: &DemoDocument) -> Vec<Change> {
        document
            .changes
            .iter()
            .map(|stored| Change::from_bytes(stored.bytes.clone()).unwrap())
            .collect()
    }

    #[test]
    fn shapes_grow_with_the_documents_asked_for() {
        let quick = Shape::for_documents(5_000);
        assert_eq!(quick.villages(), 10);
        assert!(quick.townships() >= 2);
        let full = Shape::for_documents(1_000_000);
        assert_eq!(full.villages(), 2_000);
        assert_eq!(full.villages_per_township, 20);
        // Codes are hierarchical and unique.
        let units = full.units();
        let codes: HashSet<&str> = units.iter().map(|u| u.code.as_str()).collect();
        assert_eq!(codes.len(), units.len());
        for unit in &units {
            if let Some(parent) = &unit.parent {
                let prefix = parent.as_str().trim_end_matches("00");
                assert!(unit.code.as_str().starts_with(prefix), "{}", unit.code);
            }
        }
    }

    #[test]
    fn a_township_is_the_same_every_time() {
        let a = make_township(&small(), 1).unwrap();
        let b = make_township(&small(), 1).unwrap();
        assert_eq!(a.documents, b.documents);
        assert_eq!(a.workers, b.workers);
        let other = make_township(&small(), 0).unwrap();
        assert_ne!(a.documents[0].id, other.documents[0].id);
    }

    #[test]
    fn every_document_is_valid_and_every_change_one_its_author_may_make() {
        let shape = small();
        let tree = OrgTree::from_units(shape.units());
        let township = make_township(&shape, 0).unwrap();
        let code = shape.township_code(0);
        let mut accounts = vec![
            Account::new(ADMIN, "bench-admin", Role::BureauAdmin)
                .with_org_units([OrgUnitCode::new(PREFECTURE)]),
            Account::new(
                account_id(&reviewer_username(&code)).0,
                reviewer_username(&code),
                Role::TownshipReviewer,
            )
            .with_org_units([code.clone()]),
        ];
        for v in 0..shape.villages_per_township {
            let village = village_code(&code, v);
            let name = director_username(&village);
            accounts.push(
                Account::new(account_id(&name).0, name, Role::VillageChildDirector)
                    .with_org_units([village]),
            );
        }
        accounts.extend(township.workers.iter().cloned());
        let by_actor: HashMap<ActorId, &Account> = accounts
            .iter()
            .map(|account| (demo_actor(&account.id), account))
            .collect();

        let mut ids = HashSet::new();
        let mut kinds = HashSet::new();
        for document in &township.documents {
            assert!(ids.insert(document.id), "duplicate id {}", document.id);
            kinds.insert(document.meta.kind);
            let mut doc = Automerge::new();
            let mut before: Option<Record> = None;
            for change in changes(document) {
                let author = by_actor[change.actor_id()];
                doc.apply_changes([change]).unwrap();
                let after = Record::load(&doc).unwrap();
                let decision =
                    decide_change(author, &tree, &document.meta, before.as_ref(), &after);
                assert_eq!(
                    decision,
                    Decision::Allow,
                    "{} by {}",
                    document.id,
                    author.username
                );
                before = Some(after);
            }
            let record = before.unwrap();
            validate(&record).unwrap();
            let id = document.id.to_string();
            assert_eq!(document.report, report_row(&id, &record));
            let start = history_end().days_since_epoch() + 1;
            for change in changes(document) {
                assert!(change.timestamp() * 1000 < start * DAY - CHINA_OFFSET_MILLIS);
            }
        }
        assert_eq!(kinds.len(), DocumentKind::ALL.len(), "every kind is made");
        // Each worker serves elders of their own township only.
        for worker in &township.workers {
            assert!(!worker.assigned_elders.is_empty());
        }
    }

    #[test]
    fn a_generated_database_answers_the_township_reports() {
        let (_dir, path) = temp_db();
        let shape = small();
        let mut calls = 0;
        let generated = generate(&path, shape, 2, &mut |_| calls += 1).unwrap();
        assert!(calls >= 1);
        let expected: usize = (0..2)
            .map(|i| make_township(&shape, i).unwrap().documents.len())
            .sum();
        assert_eq!(generated.documents, expected as u64);
        assert_eq!(generated.units, shape.units().len() as u64);

        let conn = store::open_connection(&path).unwrap();
        let store = DocumentStore::open(&path).unwrap();
        assert_eq!(store.document_count().unwrap(), generated.documents);
        let tree = store::load_org_tree(&conn).unwrap();
        let township = shape.township_code(1);
        let villages = crate::org::villages_within(&tree, std::slice::from_ref(&township));
        assert_eq!(villages.len(), 2);
        let month = report_month();
        let from = Date::new(month.year(), month.month(), 1).unwrap();
        let coverage = store::coverage(&conn, &villages, from, history_end()).unwrap();
        assert!(
            coverage.iter().all(|c| c.children > 0 && c.visited > 0),
            "{coverage:?}"
        );
        let hours = store::hours_per_worker(&conn, &villages, month).unwrap();
        assert!(!hours.is_empty());
        let (reviewer, _hash) = store::account_by_username(&conn, &reviewer_username(&township))
            .unwrap()
            .unwrap();
        assert_eq!(reviewer.org_units, vec![township]);
        // A second run on the same file is refused rather than mixed in.
        assert!(generate(&path, shape, 1, &mut |_| {}).is_err());
    }
}
