//! Produce (key 0), v3–v13: appends in request order, then acknowledges per `acks` from a
//! deferred task (the connection reads on meanwhile). `acks=0` sends no response.
use crate::kafka::reply::{Reply, Versions};

use super::topic_name;
use crate::broker::{is_internal_topic, BrokerError, ProducePending, ADMIN_CLIENT_ID};
use crate::kafka::context::RequestContext;
use crate::kafka::error::produce_code;
use crate::types::TopicId;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

struct TopicResult {
    name: Option<String>,
    topic_id: uuid::Uuid,
    partitions: Vec<(i32, Result<ProducePending, BrokerError>)>,
}

/// The versions of Produce this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(3, 13);

pub(crate) async fn handle(ctx: RequestContext, req: ProduceRequest) -> Reply {
    let v = ctx.api_version;
    let acks = req.acks;
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let image = ctx.broker.metadata_view();
    let mut results = Vec::with_capacity(req.topic_data.len());
    for td in req.topic_data {
        let name = if v >= 13 {
            image
                .topic_by_id(&TopicId(td.topic_id))
                .map(|t| t.name.to_string())
        } else {
            Some(td.name.0.to_string())
        };
        let mut partitions = Vec::with_capacity(td.partition_data.len());
        for pd in td.partition_data {
            let res = match &name {
                None => Err(BrokerError::UnknownTopicId),
                // Kafka lets only its own admin client write to internal topics: a record
                // there is state the coordinators load, not data.
                Some(n) if is_internal_topic(n) && ctx.client_id != ADMIN_CLIENT_ID => Err(
                    BrokerError::InvalidTopic(format!("Cannot append to internal topic {n}")),
                ),
                Some(n) => {
                    ctx.broker
                        .produce_append(n, pd.index, pd.records, acks, timeout)
                        .await
                }
            };
            partitions.push((pd.index, res));
        }
        results.push(TopicResult {
            name: if v >= 13 { None } else { name },
            topic_id: td.topic_id,
            partitions,
        });
    }
    if acks == 0 {
        return Reply::None;
    }
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::Produce(respond(v, results).await))
    }))
}

async fn respond(v: i16, results: Vec<TopicResult>) -> ProduceResponse {
    let mut r = ProduceResponse::default();
    for t in results {
        let mut tr = TopicProduceResponse::default();
        if v >= 13 {
            tr.topic_id = t.topic_id;
        } else if let Some(n) = &t.name {
            tr.name = topic_name(n);
        }
        for (index, res) in t.partitions {
            let res = match res {
                Ok(pending) => pending.wait().await,
                Err(e) => Err(e),
            };
            let mut pr = PartitionProduceResponse::default();
            pr.index = index;
            match res {
                Ok(ack) => {
                    pr.base_offset = ack.base_offset;
                    pr.log_append_time_ms = ack.log_append_time;
                    if v >= 5 {
                        pr.log_start_offset = ack.log_start_offset;
                    }
                }
                Err(e) => {
                    pr.error_code = produce_code(&e, v);
                    pr.base_offset = -1;
                    pr.log_append_time_ms = -1;
                    if v >= 5 {
                        pr.log_start_offset = -1;
                    }
                    if v >= 8 {
                        pr.error_message = Some(StrBytes::from_string(e.to_string()));
                        if let BrokerError::InvalidRecords(list)
                        | BrokerError::InvalidTimestamps(list) = &e
                        {
                            pr.record_errors = list
                                .records
                                .iter()
                                .map(|(index, msg)| {
                                    let mut be = BatchIndexAndErrorMessage::default();
                                    be.batch_index = *index;
                                    be.batch_index_error_message =
                                        Some(StrBytes::from_string(msg.clone()));
                                    be
                                })
                                .collect();
                        }
                    }
                }
            }
            tr.partition_responses.push(pr);
        }
        r.responses.push(tr);
    }
    r
}
