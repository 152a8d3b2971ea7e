//! Exports of visits and service logs as CSV and XLSX, with Chinese column headers.
